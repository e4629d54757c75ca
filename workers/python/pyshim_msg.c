/* pyshim_msg: mqttflow.Message, one MQTT message as a callback sees it (mqttflow-python.so).
 *
 * A Message points into the worker's copy of the record for the length of one call: .topic,
 * .payload and .client_id are made on first access and cached, .payload_view is a memoryview
 * straight over the record, .json() parses once and caches. After the call a Message the
 * callback kept (in a list, a global) is detached: it gets its own copies of topic, payload
 * and client id, since the record is released once the call returns. One not kept is reused
 * by the next call. One thread, holding the GIL.
 */
#include "pyshim_int.h"

#include <structmember.h>
#include <string.h>

typedef struct msgobj {
    PyObject_HEAD const mf_msg *m; /* borrowed for the call; NULL once detached */
    PyObject *topic, *payload, *client_id, *json;
    int qos, retain;
    unsigned long long received_ns;
} msgobj;

static PyTypeObject msg_type;
static PyObject *json_loads; /* json.loads, imported on the first .json() */

static PyObject *msg_get_topic(msgobj *o, void *unused)
{
    (void)unused;
    if (!o->topic && o->m)
        o->topic =
            PyUnicode_DecodeUTF8(o->m->topic, (Py_ssize_t)strlen(o->m->topic), "surrogateescape");
    Py_XINCREF(o->topic);
    return o->topic;
}

static PyObject *msg_get_payload(msgobj *o, void *unused)
{
    (void)unused;
    if (!o->payload && o->m)
        o->payload = PyBytes_FromStringAndSize(o->m->payload, (Py_ssize_t)o->m->payload_len);
    Py_XINCREF(o->payload);
    return o->payload;
}

static PyObject *msg_get_view(msgobj *o, void *unused)
{
    (void)unused;
    /* straight over the worker's copy of the record: valid until the callback returns, like
     * the C API's pointers; a message kept past its call was detached (bytes by then) */
    if (o->m)
        return PyMemoryView_FromMemory((char *)o->m->payload, (Py_ssize_t)o->m->payload_len,
                                       PyBUF_READ);
    if (!o->payload)
        Py_RETURN_NONE;
    return PyMemoryView_FromObject(o->payload);
}

static PyObject *msg_get_client(msgobj *o, void *unused)
{
    (void)unused;
    if (!o->client_id && o->m)
        o->client_id = PyUnicode_DecodeUTF8(
            o->m->client_id ? o->m->client_id : "",
            o->m->client_id ? (Py_ssize_t)strlen(o->m->client_id) : 0, "surrogateescape");
    Py_XINCREF(o->client_id);
    return o->client_id;
}

/* .json(): parsed once, cached; a payload that is not JSON raises ValueError every time */
static PyObject *msg_json(msgobj *o, PyObject *unused)
{
    (void)unused;
    if (o->json) {
        Py_INCREF(o->json);
        return o->json;
    }
    if (!json_loads) {
        PyObject *json = PyImport_ImportModule("json");
        json_loads = json ? PyObject_GetAttrString(json, "loads") : NULL;
        Py_XDECREF(json);
        if (!json_loads)
            return NULL;
    }
    PyObject *p = msg_get_payload(o, NULL);
    if (!p)
        return NULL;
    o->json = PyObject_CallOneArg(json_loads, p);
    Py_DECREF(p);
    Py_XINCREF(o->json);
    return o->json;
}

static PyObject *msg_repr(msgobj *o)
{
    PyObject *t = msg_get_topic(o, NULL);
    if (!t)
        return NULL;
    size_t len = o->m ? o->m->payload_len : o->payload ? (size_t)PyBytes_GET_SIZE(o->payload) : 0;
    PyObject *r = PyUnicode_FromFormat("<mqttflow.Message topic=%R payload=%zu bytes qos=%d>", t,
                                       len, o->qos);
    Py_DECREF(t);
    return r;
}

static void msg_clear_cache(msgobj *o)
{
    Py_CLEAR(o->topic);
    Py_CLEAR(o->payload);
    Py_CLEAR(o->client_id);
    Py_CLEAR(o->json);
}

static void msg_dealloc(msgobj *o)
{
    msg_clear_cache(o);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

static PyGetSetDef msg_getset[] = {
    {"topic", (getter)msg_get_topic, NULL, "the topic (str)", NULL},
    {"payload", (getter)msg_get_payload, NULL, "the payload (bytes)", NULL},
    {"payload_view", (getter)msg_get_view, NULL,
     "the payload as a read-only memoryview, no copy (valid until the callback returns)", NULL},
    {"client_id", (getter)msg_get_client, NULL, "the source client's id (str)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef msg_members[] = {
    {"qos", T_INT, offsetof(msgobj, qos), READONLY, "QoS of the message"},
    {"retain", T_INT, offsetof(msgobj, retain), READONLY, "retain flag (0 or 1)"},
    {"received_ns", T_ULONGLONG, offsetof(msgobj, received_ns), READONLY,
     "wall clock at ingress, ns since the epoch"},
    {NULL, 0, 0, 0, NULL},
};

static PyMethodDef msg_methods[] = {
    {"json", (PyCFunction)msg_json, METH_NOARGS, "the payload parsed as JSON (cached)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject msg_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mqttflow.Message",
    .tp_basicsize = sizeof(msgobj),
    .tp_dealloc = (destructor)msg_dealloc,
    .tp_repr = (reprfunc)msg_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One MQTT message, read-only.",
    .tp_getset = msg_getset,
    .tp_members = msg_members,
    .tp_methods = msg_methods,
};

/* one Message kept for the next call when the last one was not kept: the common case costs
 * no allocation */
static msgobj *spare;

PyTypeObject *pyshim_msg_type(void)
{
    return PyType_Ready(&msg_type) < 0 ? NULL : &msg_type;
}

PyObject *pyshim_msg_wrap(const mf_msg *m)
{
    msgobj *o = spare;
    spare = NULL;
    if (!o && !(o = PyObject_New(msgobj, &msg_type)))
        return NULL;
    o->m = m;
    o->topic = o->payload = o->client_id = o->json = NULL;
    o->qos = m->qos;
    o->retain = m->retain;
    o->received_ns = (unsigned long long)m->received_ns;
    return (PyObject *)o;
}

void pyshim_msg_detach(PyObject *obj, int kept)
{
    msgobj *o = (msgobj *)obj;
    if (kept) {
        Py_XDECREF(msg_get_topic(o, NULL));
        Py_XDECREF(msg_get_payload(o, NULL));
        Py_XDECREF(msg_get_client(o, NULL));
        PyErr_Clear(); /* only an out-of-memory: the field then reads None */
    }
    o->m = NULL;
}

void pyshim_msg_release(PyObject *obj)
{
    msgobj *o = (msgobj *)obj;
    if (Py_REFCNT(o) > 1) {
        pyshim_msg_detach(obj, 1);
        Py_DECREF(o);
        return;
    }
    msg_clear_cache(o);
    o->m = NULL;
    if (!spare) {
        spare = o; /* keeps our one reference */
        return;
    }
    Py_DECREF(o);
}
