/* pyshim_int: what the files of mqttflow-python.so share (STYLE 4); not for other modules.
 * Every function runs on the worker's one thread, holding the GIL. */
#ifndef MF_PYSHIM_INT_H
#define MF_PYSHIM_INT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "mqttflow.h"

/* ---- pyshim_msg.c: mqttflow.Message ---- */

/* The Message type, readied; NULL with an exception. */
PyTypeObject *pyshim_msg_type(void);
/* A Message over m for one call (new reference), or NULL with an exception. m must outlive
 * the call; pyshim_msg_release (or _detach) ends the borrow. */
PyObject *pyshim_msg_wrap(const mf_msg *m);
/* Ends o's borrow of its record: kept != 0 copies what it still needs first. Drops no
 * reference. */
void pyshim_msg_detach(PyObject *o, int kept);
/* After a call: detaches o if the callback kept it, else keeps it for reuse; drops the
 * caller's reference. Cannot fail. */
void pyshim_msg_release(PyObject *o);

#endif
