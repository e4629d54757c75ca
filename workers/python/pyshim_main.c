/* pyshim_main: mqttflow-python.so, the embedded CPython of one process (common/pyshim.h).
 *
 * Built as its own shared object linked with libpython3 (never part of libworkers.a), loaded
 * with dlopen by a worker whose config has Python callbacks and by `mqttflow check`. It holds:
 *   - the `mqttflow` module callbacks import: emit, publish, log, param, Message;
 *   - one mf_callback trampoline per callback index, so a Python callback is an ordinary
 *     mf_callback to the worker (chains, windows, the watchdog and ctx_call need no change);
 *   - boot.py (embedded at build time): importing modules, resolving functions and task
 *     classes, init()/fini(), locating an exception in the user's file.
 *
 * The per-message path of a plain function: one host->describe, one Message object
 * (pyshim_msg.c: reused when the callback kept no reference), one vectorcall; emit() reads
 * bytes/str in place (no copy before mf_emit's own). No system calls, no allocation beyond
 * what the callback's own Python objects cost.
 *
 * One thread holds the GIL for the life of the process (Py_InitializeFromConfig, never
 * released): the watchdog thread never touches Python, it only kills the process.
 */
#include "pyshim_int.h" /* Python.h first, as CPython asks */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pyshim.h"

#include "boot_py.h" /* generated: static const char boot_py[] = "..." */

static const pyshim_host *host;
static PyObject *boot;              /* the boot module */
static mf_ctx *cur;                 /* the ctx of the callback running now, NULL outside one */
static int cur_qos;                 /* its message's QoS (publish_message inherits it) */
static unsigned long worker_thread; /* the thread that runs callbacks (PyThread ident) */

typedef struct pycb {
    PyObject *fn; /* the function, or the task class */
    int task;     /* 1: the Python framework's task-class style */
} pycb;
static pycb cbs[CFG_MAX_CALLBACKS];

/* ---- the mqttflow module ---- */

static int levels_by_name(PyObject *lv, int *out)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {{"DEBUG", MF_LOG_DEBUG},  {"INFO", MF_LOG_INFO},   {"WARNING", MF_LOG_WARNING},
                 {"WARN", MF_LOG_WARNING}, {"ERROR", MF_LOG_ERROR}, {"CRITICAL", MF_LOG_ERROR}};
    if (PyLong_Check(lv)) {
        int overflow;
        long v = PyLong_AsLongAndOverflow(lv, &overflow);
        if (overflow)
            v = overflow < 0 ? MF_LOG_DEBUG : MF_LOG_ERROR;
        *out = v <= MF_LOG_DEBUG     ? MF_LOG_DEBUG
               : v <= MF_LOG_INFO    ? MF_LOG_INFO
               : v <= MF_LOG_WARNING ? MF_LOG_WARNING
                                     : MF_LOG_ERROR;
        return 0;
    }
    const char *s = PyUnicode_Check(lv) ? PyUnicode_AsUTF8(lv) : NULL;
    for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    PyErr_Format(PyExc_ValueError,
                 "log: level %R is not one of \"DEBUG\", \"INFO\", \"WARNING\", \"ERROR\"", lv);
    return -1;
}

/* payload as bytes: bytes and str in place, any buffer (bytearray, memoryview) through
 * view (released by the caller when view->obj is set). */
static int payload_of(const char *fn, PyObject *p, const char **data, Py_ssize_t *len,
                      Py_buffer *view)
{
    view->obj = NULL;
    if (PyBytes_Check(p)) {
        *data = PyBytes_AS_STRING(p);
        *len = PyBytes_GET_SIZE(p);
        return 0;
    }
    if (PyUnicode_Check(p))
        return (*data = PyUnicode_AsUTF8AndSize(p, len)) ? 0 : -1;
    if (PyObject_CheckBuffer(p)) {
        if (PyObject_GetBuffer(p, view, PyBUF_SIMPLE) < 0)
            return -1;
        *data = view->buf;
        *len = view->len;
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "%s: payload must be bytes or str, not %.100s", fn,
                 Py_TYPE(p)->tp_name);
    return -1;
}

static const char *topic_of(const char *fn, PyObject *t)
{
    Py_ssize_t n;
    const char *s;
    if (!PyUnicode_Check(t)) {
        PyErr_Format(PyExc_TypeError, "%s: topic must be str, not %.100s", fn, Py_TYPE(t)->tp_name);
        return NULL;
    }
    if (!(s = PyUnicode_AsUTF8AndSize(t, &n)))
        return NULL;
    if (n == 0 || n > 65535 || (Py_ssize_t)strlen(s) != n) {
        PyErr_Format(PyExc_ValueError,
                     "%s: topic %R is not a valid topic name (1 to 65535 bytes, "
                     "no NUL)",
                     fn, t);
        return NULL;
    }
    if (strpbrk(s, "+#")) {
        PyErr_Format(PyExc_ValueError,
                     "%s: topic %R has a wildcard (+ or #): only a subscription may", fn, t);
        return NULL;
    }
    return s;
}

static PyObject *raise_rc(const char *fn, int rc)
{
    if (rc == -ENOSPC)
        PyErr_Format(PyExc_RuntimeError, "%s: the output limit of one invocation is reached", fn);
    else if (rc == -EINVAL)
        PyErr_Format(PyExc_ValueError,
                     "%s: refused (topic, payload size above runtime.max_payload, or record too "
                     "large for the output ring)",
                     fn);
    else
        PyErr_Format(PyExc_OSError, "%s: %s", fn, strerror(-rc));
    return NULL;
}

static int need_call(const char *fn)
{
    /* a thread the callback started may run while the callback blocks (time.sleep releases
     * the GIL); the output ring has one producer, the worker's own thread */
    if (PyThread_get_thread_ident() != worker_thread) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s: only the thread that runs the callback may call it, during the call", fn);
        return -1;
    }
    if (cur)
        return 0;
    PyErr_Format(PyExc_RuntimeError,
                 "%s: no message is being processed (called at import, in init() or fini()?)", fn);
    return -1;
}

static PyObject *py_emit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "emit(topic, payload) takes 2 arguments");
        return NULL;
    }
    const char *topic = topic_of("emit", args[0]), *data;
    Py_ssize_t len;
    Py_buffer view;
    if (!topic || need_call("emit") < 0 || payload_of("emit", args[1], &data, &len, &view) < 0)
        return NULL;
    if (!host->emit) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_RuntimeError, "emit: not available here");
        return NULL;
    }
    int rc = host->emit(cur, topic, data, (size_t)len);
    if (view.obj)
        PyBuffer_Release(&view);
    if (rc < 0)
        return raise_rc("emit", rc);
    Py_RETURN_NONE;
}

static PyObject *do_publish(const char *client, PyObject *t, PyObject *p, int qos, int retain)
{
    const char *topic = topic_of("publish", t), *data;
    Py_ssize_t len;
    Py_buffer view;
    if (!topic || need_call("publish") < 0)
        return NULL;
    if (qos < 0 || qos > 2) {
        PyErr_Format(PyExc_ValueError, "publish: qos %d is outside 0..2", qos);
        return NULL;
    }
    if (qos == 2) {
        PyErr_SetString(PyExc_ValueError, "publish: qos 2 is not supported (mqttflow publishes "
                                          "at QoS 0 or 1)");
        return NULL;
    }
    if (!host->publish || !host->client_known) {
        PyErr_SetString(PyExc_RuntimeError, "publish: not available here");
        return NULL;
    }
    if (!host->client_known(client)) {
        PyErr_Format(PyExc_ValueError, "publish: no client \"%s\" in mqtt_clients", client);
        return NULL;
    }
    if (payload_of("publish", p, &data, &len, &view) < 0)
        return NULL;
    int rc = host->publish(cur, client, topic, data, (size_t)len, qos, retain);
    if (view.obj)
        PyBuffer_Release(&view);
    if (rc < 0)
        return raise_rc("publish", rc);
    Py_RETURN_NONE;
}

static PyObject *py_publish(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kws[] = {"client_id", "topic", "payload", "qos", "retain", NULL};
    const char *client;
    PyObject *t, *p;
    int qos = 0, retain = 0;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "sOO|ip:publish", kws, &client, &t, &p, &qos,
                                     &retain))
        return NULL;
    return do_publish(client, t, p, qos, retain);
}

/* publish_message of a task class: the QoS of the message being processed (at most 1) */
static PyObject *py_publish_inherit(PyObject *self, PyObject *args)
{
    const char *client;
    PyObject *t, *p;
    (void)self;
    if (!PyArg_ParseTuple(args, "sOO:publish_message", &client, &t, &p))
        return NULL;
    return do_publish(client, t, p, cur_qos > 0 ? 1 : 0, 0);
}

static PyObject *py_log(PyObject *self, PyObject *args)
{
    PyObject *lv, *text;
    int level;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO:log", &lv, &text) || levels_by_name(lv, &level) < 0)
        return NULL;
    PyObject *s = PyObject_Str(text);
    const char *c = s ? PyUnicode_AsUTF8(s) : NULL;
    if (c && host->log)
        host->log(cur, level, c);
    Py_XDECREF(s);
    if (!c)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_param(PyObject *self, PyObject *arg)
{
    (void)self;
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "param: key must be str, not %.100s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    const char *key = PyUnicode_AsUTF8(arg);
    const char *v = key && cur && host->param ? host->param(cur, key) : NULL;
    if (!key)
        return NULL;
    if (!v)
        Py_RETURN_NONE;
    return PyUnicode_FromString(v);
}

static PyMethodDef mod_methods[] = {
    {"emit", (PyCFunction)(void (*)(void))py_emit, METH_FASTCALL,
     "emit(topic, payload): hand a message to the next step (or publish it at the end)"},
    {"publish", (PyCFunction)(void (*)(void))py_publish, METH_VARARGS | METH_KEYWORDS,
     "publish(client_id, topic, payload, qos=0, retain=False): publish through any client"},
    {"_publish_inherit", py_publish_inherit, METH_VARARGS, NULL},
    {"log", py_log, METH_VARARGS, "log(level, text): level DEBUG, INFO, WARNING or ERROR"},
    {"param", py_param, METH_O, "param(key): a value of the step's config as str, or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef mod_def = {
    PyModuleDef_HEAD_INIT,
    "mqttflow",
    "mqttflow's callback API (common/mqttflow.h in Python)",
    -1,
    mod_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

static PyObject *mod_init(void)
{
    PyTypeObject *msg_type = pyshim_msg_type();
    if (!msg_type)
        return NULL;
    PyObject *m = PyModule_Create(&mod_def);
    if (!m)
        return NULL;
    Py_INCREF(msg_type);
    if (PyModule_AddObject(m, "Message", (PyObject *)msg_type) < 0 ||
        PyModule_AddIntConstant(m, "DEBUG", MF_LOG_DEBUG) < 0 ||
        PyModule_AddIntConstant(m, "INFO", MF_LOG_INFO) < 0 ||
        PyModule_AddIntConstant(m, "WARNING", MF_LOG_WARNING) < 0 ||
        PyModule_AddIntConstant(m, "ERROR", MF_LOG_ERROR) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/* ---- errors ---- */

/* Fills e from the pending exception (boot.where), and clears it. */
static void take_error(pyshim_err *e)
{
    PyObject *type, *exc, *trace;
    PyErr_Fetch(&type, &exc, &trace);
    PyErr_NormalizeException(&type, &exc, &trace);
    if (exc && trace)
        PyException_SetTraceback(exc, trace);
    Py_XDECREF(type);
    Py_XDECREF(trace);
    memset(e, 0, sizeof(*e));
    PyObject *w = exc && boot ? PyObject_CallMethod(boot, "where", "O", exc) : NULL;
    const char *file, *msg, *tb;
    int line, col;
    if (w && PyArg_ParseTuple(w, "siiss", &file, &line, &col, &msg, &tb)) {
        snprintf(e->file, sizeof(e->file), "%s", file);
        e->line = line;
        e->col = col;
        snprintf(e->msg, sizeof(e->msg), "%s", msg);
        snprintf(e->traceback, sizeof(e->traceback), "%s", tb);
    } else {
        PyErr_Clear();
        PyObject *s = exc ? PyObject_Str(exc) : NULL;
        const char *c = s ? PyUnicode_AsUTF8(s) : NULL;
        snprintf(e->msg, sizeof(e->msg), "%s: %s", exc ? Py_TYPE(exc)->tp_name : "error",
                 c ? c : "?");
        Py_XDECREF(s);
        PyErr_Clear();
    }
    Py_XDECREF(w);
    Py_XDECREF(exc);
}

/* Logs the pending exception of a callback, traceback line by line (mf_log prefixes each
 * with the rule and callback name), and clears it. */
static void log_exception(mf_ctx *x, const pyshim_call *c)
{
    pyshim_err e;
    take_error(&e);
    char head[1200];
    (void)c; /* mf_log names the rule and the callback on every line */
    snprintf(head, sizeof(head), "raised %s%s", e.msg, e.traceback[0] ? "; traceback:" : "");
    host->log(x, MF_LOG_ERROR, head);
    for (char *line = e.traceback, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        host->log(x, MF_LOG_ERROR, line);
    }
}

/* ---- calls ---- */

static PyObject *task_config_of(const pyshim_call *c)
{
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && i < c->n_params; i++) {
        PyObject *v = PyUnicode_FromString(c->params[i].value ? c->params[i].value : "");
        if (!v || PyDict_SetItemString(d, c->params[i].key, v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v);
    }
    PyObject *name = d ? PyUnicode_FromString(c->callback) : NULL;
    if (name && PyDict_SetItemString(d, "name", name) < 0)
        Py_CLEAR(d);
    Py_XDECREF(name);
    return d;
}

/* One call of callback i; returns its result (new reference) or NULL with an exception. */
static PyObject *call_one(const pycb *cb, const pyshim_call *c, PyObject *arg)
{
    if (!cb->task)
        return PyObject_CallOneArg(cb->fn, arg);
    PyObject *tc = task_config_of(c);
    PyObject *r = tc ? PyObject_CallMethod(boot, "run_task", "OOO", cb->fn, arg, tc) : NULL;
    Py_XDECREF(tc);
    return r;
}

static int result_of(mf_ctx *x, const pyshim_call *c, PyObject *r)
{
    if (!r) {
        log_exception(x, c);
        return 1;
    }
    int rc = 0;
    int overflow = 0;
    /* exactly None or the int 0 (False is an error, like any other value) */
    if (r != Py_None &&
        !(PyLong_CheckExact(r) && PyLong_AsLongAndOverflow(r, &overflow) == 0 && !overflow)) {
        PyObject *s = PyObject_Repr(r);
        const char *t = s ? PyUnicode_AsUTF8(s) : "?";
        char line[600];
        snprintf(line, sizeof(line),
                 "returned %.400s: a callback returns None or 0, anything else is an error",
                 t ? t : "?");
        host->log(x, MF_LOG_ERROR, line);
        Py_XDECREF(s);
        PyErr_Clear();
        rc = 1;
    }
    Py_DECREF(r);
    return rc;
}

static int dispatch(int i, mf_ctx *x, const mf_msg *msgs, size_t n)
{
    const pycb *cb = &cbs[i];
    pyshim_call c = {"?", "?", 0, NULL, 0};
    if (host->describe)
        host->describe(x, &c);
    if (!cb->fn)
        return -EINVAL;
    mf_ctx *saved = cur;
    int saved_qos = cur_qos;
    cur = x;
    cur_qos = n ? msgs[0].qos : 0;
    int rc = 0;

    if (!c.window && !cb->task && n == 1) {
        PyObject *o = pyshim_msg_wrap(&msgs[0]);
        PyObject *r = o ? PyObject_CallOneArg(cb->fn, o) : NULL;
        rc = result_of(x, &c, r);
        if (o)
            pyshim_msg_release(o);
    } else if (c.window && !cb->task) {
        PyObject *list = PyList_New((Py_ssize_t)n);
        for (size_t k = 0; list && k < n; k++) {
            PyObject *o = pyshim_msg_wrap(&msgs[k]);
            if (!o) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, (Py_ssize_t)k, o);
        }
        PyObject *r = list ? PyObject_CallOneArg(cb->fn, list) : NULL;
        rc = result_of(x, &c, r);
        if (list) {
            for (size_t k = 0; k < n; k++) {
                PyObject *o = PyList_GET_ITEM(list, (Py_ssize_t)k);
                pyshim_msg_detach(o, Py_REFCNT(o) > 1 || Py_REFCNT(list) > 1);
            }
            Py_DECREF(list);
        }
    } else {
        /* a task class: one task per message, as the Python framework made them */
        for (size_t k = 0; k < n && rc == 0; k++) {
            PyObject *o = pyshim_msg_wrap(&msgs[k]);
            PyObject *r = o ? call_one(cb, &c, o) : NULL;
            rc = result_of(x, &c, r);
            if (o)
                pyshim_msg_release(o);
        }
    }
    cur = saved;
    cur_qos = saved_qos;
    return rc;
}

/* One mf_callback per callback index: the worker calls an mf_callback with no closure, so
 * the index is in the function. 4096 tiny functions, generated. */
/* clang-format does not settle on one layout of these macro lists */
/* clang-format off */
#define TR(h) \
    static int tr_##h(mf_ctx *x, const mf_msg *m, size_t n) { return dispatch(0x##h, x, m, n); }
#define TR16(p) \
    TR(p##0) TR(p##1) TR(p##2) TR(p##3) TR(p##4) TR(p##5) TR(p##6) TR(p##7) \
    TR(p##8) TR(p##9) TR(p##a) TR(p##b) TR(p##c) TR(p##d) TR(p##e) TR(p##f)
#define TR256(p) \
    TR16(p##0) TR16(p##1) TR16(p##2) TR16(p##3) TR16(p##4) TR16(p##5) TR16(p##6) TR16(p##7) \
    TR16(p##8) TR16(p##9) TR16(p##a) TR16(p##b) TR16(p##c) TR16(p##d) TR16(p##e) TR16(p##f)
TR256(0) TR256(1) TR256(2) TR256(3) TR256(4) TR256(5) TR256(6) TR256(7)
TR256(8) TR256(9) TR256(a) TR256(b) TR256(c) TR256(d) TR256(e) TR256(f)

#define E(h) tr_##h,
#define E16(p) \
    E(p##0) E(p##1) E(p##2) E(p##3) E(p##4) E(p##5) E(p##6) E(p##7) \
    E(p##8) E(p##9) E(p##a) E(p##b) E(p##c) E(p##d) E(p##e) E(p##f)
#define E256(p) \
    E16(p##0) E16(p##1) E16(p##2) E16(p##3) E16(p##4) E16(p##5) E16(p##6) E16(p##7) \
    E16(p##8) E16(p##9) E16(p##a) E16(p##b) E16(p##c) E16(p##d) E16(p##e) E16(p##f)
static const mf_callback trampolines[] = {
    E256(0) E256(1) E256(2) E256(3) E256(4) E256(5) E256(6) E256(7)
    E256(8) E256(9) E256(a) E256(b) E256(c) E256(d) E256(e) E256(f)
};
/* clang-format on */
_Static_assert(sizeof(trampolines) / sizeof(trampolines[0]) == CFG_MAX_CALLBACKS,
               "one trampoline per callback index");

/* ---- the pyshim_api ---- */

/* boot.setup: the venv's site-packages and the configured folders on sys.path. */
static int add_paths(const char *venv, char *const *path, size_t n_path, pyshim_err *e)
{
    PyObject *paths = PyList_New(0);
    for (size_t i = 0; paths && i < n_path; i++) {
        PyObject *s = PyUnicode_DecodeFSDefault(path[i]);
        if (!s || PyList_Append(paths, s) < 0)
            Py_CLEAR(paths);
        Py_XDECREF(s);
    }
    PyObject *r = paths ? PyObject_CallMethod(boot, "setup", "zO", venv, paths) : NULL;
    Py_XDECREF(paths);
    if (!r) {
        take_error(e);
        return -ENOENT;
    }
    Py_DECREF(r);
    return 0;
}

static int shim_start(const pyshim_host *h, const char *venv, char *const *path, size_t n_path,
                      pyshim_err *e)
{
    memset(e, 0, sizeof(*e));
    if (Py_IsInitialized() && !boot) {
        snprintf(e->msg, sizeof(e->msg), "a Python interpreter not started by mqttflow runs");
        return -EALREADY;
    }
    host = h;
    if (boot) /* started before in this process (check, then a loader): the new host and path */
        return add_paths(venv, path, n_path, e);
    if (PyImport_AppendInittab("mqttflow", mod_init) < 0) {
        snprintf(e->msg, sizeof(e->msg), "PyImport_AppendInittab(mqttflow) failed");
        return -ENOMEM;
    }
    PyConfig pc;
    PyConfig_InitPythonConfig(&pc);
    pc.install_signal_handlers = 0; /* SIGTERM/SIGINT stay the stage's (common/stage.h) */
    pc.write_bytecode = 0;          /* an edited module is read afresh by a restarted worker,
                                     * and the user's folders get no __pycache__ */
    pc.buffered_stdio = 0;          /* print() reaches the log before a crash, not after */
    pc.parse_argv = 0;
    PyStatus st = Py_InitializeFromConfig(&pc);
    PyConfig_Clear(&pc);
    if (PyStatus_Exception(st)) {
        snprintf(e->msg, sizeof(e->msg), "Python initialisation failed: %s",
                 st.err_msg ? st.err_msg : "?");
        return -EIO;
    }
    worker_thread = PyThread_get_thread_ident();
    PyObject *code = Py_CompileString(boot_py, "<mqttflow boot>", Py_file_input);
    boot = code ? PyImport_ExecCodeModule("_mqttflow_boot", code) : NULL;
    Py_XDECREF(code);
    if (!boot) {
        take_error(e);
        return -EIO;
    }
    return add_paths(venv, path, n_path, e);
}

static int shim_resolve(const char *module, const char *function, int i, mf_callback *fn,
                        pyshim_err *e)
{
    memset(e, 0, sizeof(*e));
    if (i < 0 || i >= CFG_MAX_CALLBACKS || !boot)
        return -EINVAL;
    PyObject *r = PyObject_CallMethod(boot, "resolve", "ss", module, function);
    if (!r) {
        take_error(e);
        return -ENOENT;
    }
    PyObject *f;
    int task;
    if (!PyArg_ParseTuple(r, "Op", &f, &task)) {
        Py_DECREF(r);
        take_error(e);
        return -EINVAL;
    }
    Py_INCREF(f);
    Py_XSETREF(cbs[i].fn, f);
    cbs[i].task = task;
    Py_DECREF(r);
    *fn = trampolines[i];
    return 0;
}

static int shim_init(pyshim_err *e)
{
    memset(e, 0, sizeof(*e));
    PyObject *r = boot ? PyObject_CallMethod(boot, "init_all", NULL) : NULL;
    if (!r) {
        take_error(e);
        return -ECANCELED;
    }
    Py_DECREF(r);
    return 0;
}

static void shim_fini(void)
{
    if (!boot)
        return;
    PyObject *r = PyObject_CallMethod(boot, "fini_all", NULL);
    if (!r)
        PyErr_Clear();
    Py_XDECREF(r);
    /* no Py_FinalizeEx: the process exits next, and a callback's own threads could make
     * finalisation wait; stdio is unbuffered so nothing is left to flush */
}

__attribute__((visibility("default"))) extern const pyshim_api pyshim_api_v1;
const pyshim_api pyshim_api_v1 = {
    .abi = PYSHIM_ABI,
    .start = shim_start,
    .resolve = shim_resolve,
    .init = shim_init,
    .fini = shim_fini,
};
