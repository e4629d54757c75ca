/* cfg_load: reading the file, the top-level sections in dependency order, and the lookups. */
#include "cfg_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const cfg_field top_fields[] = {
    {"mqtt_clients", CFG_F_ANY, 0, NULL, CFG_REQUIRED, 0, 0, NULL},
    {"callbacks", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
    {"rules", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
    {"processing_chains", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
    {"runtime", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
    {"logging", CFG_F_ANY, 0, NULL, 0, 0, 0, NULL},
};

void cfg_destroy(cfg *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_clients; i++)
        cfg_client_fini(&c->clients[i]);
    free(c->clients);
    for (size_t i = 0; i < c->n_callbacks; i++) {
        free(c->callbacks[i].name);
        free(c->callbacks[i].module);
        free(c->callbacks[i].function);
    }
    free(c->callbacks);
    for (size_t i = 0; i < c->n_rules; i++)
        cfg_rule_fini(&c->rules[i]);
    free(c->rules);
    for (size_t i = 0; i < c->n_chains; i++) {
        for (size_t j = 0; j < c->chains[i].n_steps; j++)
            cfg_step_fini(&c->chains[i].steps[j]);
        free(c->chains[i].steps);
        free(c->chains[i].name);
    }
    free(c->chains);
    cfg_runtime_fini(&c->runtime);
    cfg_logging_fini(&c->logging);
    free(c->path);
    free(c->dir);
    free(c);
}

/* Declared but never used: almost always a typo elsewhere or a leftover. */
static void warn_unused(cfg_ctx *x)
{
    const cfg *c = x->c;
    for (size_t i = 0; i < c->n_callbacks; i++) {
        bool used = false;
        for (size_t r = 0; r < c->n_rules && !used; r++)
            used = c->rules[r].callback == (int)i;
        for (size_t k = 0; k < c->n_chains && !used; k++)
            for (size_t s = 0; s < c->chains[k].n_steps && !used; s++)
                used = c->chains[k].steps[s].callback == (int)i;
        if (!used)
            cfg_diag_add(x->d, true, x->name, c->callbacks[i].pos, "callbacks",
                         "callback \"%s\" is not used by any rule or step", c->callbacks[i].name);
    }
    for (size_t i = 0; i < c->n_chains; i++) {
        bool used = false;
        for (size_t r = 0; r < c->n_rules && !used; r++)
            used = c->rules[r].chain == (int)i;
        if (!used)
            cfg_diag_add(x->d, true, x->name, c->chains[i].pos, "processing_chains",
                         "chain \"%s\" is not the action of any rule", c->chains[i].name);
    }
}

int cfg_load_buffer(const char *name, const char *dir, const char *data, size_t len, unsigned flags,
                    cfg **out, cfg_diag *diag)
{
    cfg_diag local = {0};
    cfg_diag *d = diag ? diag : &local;
    cfg_node *root = NULL;
    *out = NULL;
    cfg *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    char cwd[PATH_MAX];
    if (!dir)
        dir = getcwd(cwd, sizeof(cwd)) ? cwd : ".";
    c->path = strdup(name);
    c->dir = strdup(dir);
    if (!c->path || !c->dir) {
        cfg_destroy(c);
        return -ENOMEM;
    }
    int r = cfg_yaml_parse(name, data, len, &root, d);
    if (r < 0)
        goto fail;

    cfg_ctx x = {.name = name, .dir = c->dir, .flags = flags, .c = c, .d = d};
    /* order matters: rules and steps resolve names of the sections before them */
    if (cfg_schema_decode(&x, root, top_fields, CFG_NFIELDS(top_fields), c, false)) {
        const cfg_node *v;
        if ((v = cfg_node_get(root, "mqtt_clients")))
            cfg_clients_load(&x, v);
        if ((v = cfg_node_get(root, "callbacks")))
            cfg_callbacks_load(&x, v);
        if ((v = cfg_node_get(root, "processing_chains")))
            cfg_chains_load(&x, v);
        if ((v = cfg_node_get(root, "rules")))
            cfg_rules_load(&x, v);
        cfg_runtime_load(&x, cfg_node_get(root, "runtime"));
        cfg_logging_load(&x, cfg_node_get(root, "logging"));
        if (!x.errors && (flags & CFG_LOAD_CHECK_MODULES))
            cfg_python_check(&x, root);
        if (!x.errors)
            warn_unused(&x);
    }
    cfg_node_free(root);
    if (x.errors) {
        r = -EINVAL;
        goto fail;
    }
    *out = c;
    cfg_diag_fini(&local);
    return 0;
fail:
    cfg_destroy(c);
    cfg_diag_fini(&local);
    return r;
}

int cfg_load(const char *path, unsigned flags, cfg **out, cfg_diag *diag)
{
    *out = NULL;
    cfg_pos none = {0, 0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        cfg_diag_add(diag, false, path, none, NULL, "cannot read: %s", strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size > CFG_MAX_FILE) {
        cfg_diag_add(diag, false, path, none, NULL,
                     S_ISREG(st.st_mode) ? "file is larger than the limit of %u bytes"
                                         : "not a regular file (limit %u bytes)",
                     CFG_MAX_FILE);
        close(fd);
        return -EINVAL;
    }
    size_t len = (size_t)st.st_size, got = 0;
    char *data = malloc(len + 1);
    if (!data) {
        close(fd);
        return -ENOMEM;
    }
    while (got < len) {
        ssize_t n = read(fd, data + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);

    /* relative names in the file are relative to the file's folder, wherever we run from */
    char *copy = strdup(path), dir[PATH_MAX];
    int r = -ENOMEM;
    if (copy && realpath(dirname(copy), dir))
        r = cfg_load_buffer(path, dir, data, got, flags, out, diag);
    else if (copy) {
        r = -errno;
        cfg_diag_add(diag, false, path, none, NULL, "cannot resolve its folder: %s", strerror(-r));
    }
    free(copy);
    free(data);
    return r;
}

int cfg_client_index(const cfg *c, const char *client_id)
{
    for (size_t i = 0; i < c->n_clients; i++)
        if (c->clients[i].client_id && !strcmp(c->clients[i].client_id, client_id))
            return (int)i;
    return -1;
}

int cfg_callback_index(const cfg *c, const char *name)
{
    for (size_t i = 0; i < c->n_callbacks; i++)
        if (c->callbacks[i].name && !strcmp(c->callbacks[i].name, name))
            return (int)i;
    return -1;
}

int cfg_chain_index(const cfg *c, const char *name)
{
    for (size_t i = 0; i < c->n_chains; i++)
        if (c->chains[i].name && !strcmp(c->chains[i].name, name))
            return (int)i;
    return -1;
}

size_t cfg_ingress_count(const cfg *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_clients; i++)
        n += c->clients[i].n_topics > 0;
    return n;
}

int cfg_ingress_client(const cfg *c, size_t i)
{
    for (size_t k = 0; k < c->n_clients; k++)
        if (c->clients[k].n_topics > 0 && i-- == 0)
            return (int)k;
    return -1;
}
