/* cfg_steps: the table of step kinds (STYLE 22), the one place that lists them.
 *
 * One row per kind: K(ID, name, flags, check, fields...). Three readers expand it, so a new
 * kind is one row here and one file, workers/step_<name>.c:
 *   cfg.h           enum cfg_step_kind: CFG_STEP_<ID>, in row order, then CFG_STEP_N_KINDS;
 *   config/         cfg_chain.c: the YAML `step: <name>`, the kind's `config:` keys (fields),
 *                   its flags and check, the list of kinds in "unknown step" errors;
 *   workers/        chain.c: the kind's behaviour, `const step_ops step_<name>_ops` (chain_int.h),
 *                   defined in workers/step_<name>.c.
 * The layering rule: config/ owns what a step *accepts* (keys, types, ranges, cross checks),
 * workers/ what it *does*; config never links worker code (`mqttflow check` validates a chain
 * without a worker in the binary) and the two meet only in this list of names.
 *
 *   ID      upper-case enum suffix
 *   name    the YAML name; also names the worker's ops, step_<name>_ops
 *   flags   CFG_STEP_PARAMS: keys beyond the fields are parameters for the step's callback
 *           (mf_param); CFG_STEP_STATEFUL: keeps state across messages (a parallel rule warns;
 *           the worker gives it a region of its state segment, wstate.h)
 *   check   NULL, or a cfg_chain.c function for what fields cannot say (cross-field rules,
 *           resolving a callback or client name)
 *   fields  cfg_field rows, F(key, type, cfg_step member, default, flags, min, max, names)
 *           (cfg_int.h); members of cfg_step are shared by kinds: a kind reuses one of the
 *           same type and meaning (interval: seconds, field: a JSON field path, ...) or adds
 *           its own in cfg.h. Every field of a stateful kind (but names) is part of the state's
 *           identity: a changed value starts that state fresh (wstate.h).
 *
 * Rows are never reordered without need: the enum follows them (the state segment does not:
 * it identifies a kind by name).
 */
#ifndef MF_CFG_STEPS_H
#define MF_CFG_STEPS_H

enum { CFG_STEP_PARAMS = 1u << 0, CFG_STEP_STATEFUL = 1u << 1 };

// clang-format off
#define CFG_STEP_KINDS(K)                                                                          \
    K(SAMPLER, sampler, CFG_STEP_PARAMS | CFG_STEP_STATEFUL, check_sampler,                        \
      F("duration", CFG_F_DURATION, duration, NULL, CFG_REQUIRED, 0, 0, NULL),                     \
      F("callback", CFG_F_NAME, callback, NULL, 0, 0, 0, NULL),                                    \
      F("max_messages", CFG_F_U32, max_messages, "10000", 0, 1, 100000000, NULL))                  \
    K(CUSTOM_PROCESSOR, custom_processor, CFG_STEP_PARAMS, check_custom_processor,                 \
      F("callback", CFG_F_NAME, callback, NULL, CFG_REQUIRED, 0, 0, NULL))                         \
    K(RELAY, relay, 0, check_relay,                                                                \
      F("target_client_id", CFG_F_NAME, target_client, NULL, 0, 0, 0, NULL),                       \
      F("target_topic", CFG_F_STR, target_topic, NULL, 0, 0, 0, NULL),                             \
      F("qos", CFG_F_INT, qos, NULL, 0, 0, 2, NULL),                                               \
      F("retain", CFG_F_TRIBOOL, retain, NULL, 0, 0, 0, NULL))                                     \
    K(FORMAT, format, 0, NULL,                                                                     \
      F("topic_prefix", CFG_F_STR, topic_prefix, NULL, 0, 0, 0, NULL),                             \
      F("topic_suffix", CFG_F_STR, topic_suffix, NULL, 0, 0, 0, NULL),                             \
      F("topic_template", CFG_F_STR, topic_template, NULL, 0, 0, 0, NULL),                         \
      F("payload_template", CFG_F_STR, payload_template, NULL, 0, 0, 0, NULL))                     \
    K(FILTER, filter, 0, check_filter,                                                             \
      F("condition", CFG_F_STR, condition, NULL, CFG_REQUIRED, 0, 0, NULL))                        \
    K(BATCH, batch, CFG_STEP_STATEFUL, check_batch,                                                \
      F("count", CFG_F_U32, batch_count, NULL, 0, 1, 1000000, NULL),                               \
      F("interval", CFG_F_DURATION, interval, NULL, 0, 0.001, 86400, NULL))                        \
    K(THROTTLE, throttle, CFG_STEP_STATEFUL, check_throttle,                                       \
      F("rate", CFG_F_DOUBLE, rate, NULL, 0, 1e-6, 1e9, NULL),                                     \
      F("interval", CFG_F_DURATION, interval, NULL, 0, 0.001, 86400, NULL))                        \
    K(ON_CHANGE, on_change, CFG_STEP_STATEFUL, NULL,                                               \
      F("field", CFG_F_STR, field, NULL, 0, 0, 0, NULL))                                           \
    K(AGGREGATE, aggregate, CFG_STEP_STATEFUL, NULL,                                               \
      F("field", CFG_F_STR, field, NULL, 0, 0, 0, NULL),                                           \
      F("fn", CFG_F_ENUM, agg_fn, NULL, CFG_REQUIRED, 0, 0, agg_fns),                              \
      F("interval", CFG_F_DURATION, interval, NULL, CFG_REQUIRED, 0.001, 86400, NULL))          \
    K(DEDUP, dedup, CFG_STEP_STATEFUL, NULL,                                                       \
      F("window", CFG_F_DURATION, interval, NULL, CFG_REQUIRED, 0.001, 2592000, NULL),             \
      F("key", CFG_F_STR, field, NULL, 0, 0, 0, NULL))                                             \
    /* a new kind: a row above this line (every row ends in a backslash) */
// clang-format on

#endif
