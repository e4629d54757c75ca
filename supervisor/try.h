/* try: `mqttflow try`, one message (or a file of them) through the rules and chains of a
 * config in this one process, with the real callback modules, and a report on stdout of what
 * happened: which rules matched, what each chain step handed on, and what would be published
 * on which client. No broker, no shared memory: the rule set (router/rule.h), the loader and
 * the chains (workers/loader.h, workers/chain.h, over private state) are those the router and
 * the workers run, and "publish" only prints. Windowed steps (sampler, batch, aggregate) close
 * when the input ends, so their callbacks run and their outputs show.
 *
 *   mqttflow try CONFIG --topic T --payload P [--client C] [--qos N]
 *   mqttflow try CONFIG --file F [--client C]
 *
 * --file reads JSON lines in the dead-letter store's format (common/deadletter.h): topic,
 * payload or payload_b64, payload_len, qos, source_client; rule, callback, reason and time are
 * shown as context. Missing fields take defaults (qos 0, an empty payload, the client of
 * --client or the one whose subscriptions cover the topic; --topic when the line has no
 * topic); a payload shorter than its payload_len is reported as truncated and run as it is.
 * Without --client the source client is the first whose subscriptions match the topic (else
 * the first client).
 *
 * Exit: 0; 1 when a callback returned an error or a line of --file could not be read (each
 * reported, the rest still run); 2 for a usage or configuration error (a callback module that
 * does not load included).
 */
#ifndef MF_SUPERVISOR_TRY_H
#define MF_SUPERVISOR_TRY_H

#define TRY_HELP                                                                                   \
    "try: runs messages through the rules and chains of CONFIG in this process, with the\n"        \
    "real callbacks and no broker: prints which rules matched, what each chain step emitted\n"     \
    "and what would be published where. Windowed steps close at the end of the input.\n"           \
    "--file F reads JSON lines in the dead-letter store's format (dead-letters.jsonl), so a\n"     \
    "dead letter can be replayed against a fixed callback; a line's missing fields take\n"         \
    "defaults, a truncated payload is said to be one. Exit 1 when a callback failed.\n"

/* The `try` command: argv[0] is "try". Returns the exit code. */
int try_cli(int argc, char **argv);

#endif
