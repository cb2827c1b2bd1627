/* sites.c: record_from, the user's source line of each recorded node */
/* record_from's state: sites by id(node), code classification by id(code), the Python
 * classifier for codes not seen yet */
static PyObject *g_sites, *g_codes, *g_classify, *g_buffer_op, *s_f_lasti;

static PyObject *setup_sites(PyObject *self, PyObject *args) {
    PyObject *sites, *codes, *classify, *buffer;
    if (!PyArg_ParseTuple(args, "O!O!OO", &PyDict_Type, &sites, &PyDict_Type, &codes, &classify,
                          &buffer))
        return NULL;
    keep(&g_sites, sites);
    keep(&g_codes, codes);
    keep(&g_classify, classify);
    keep(&g_buffer_op, buffer);
    Py_RETURN_NONE;
}

/* sites._walk: (code, offset, api) of the first frame outside the package, or None */
static PyObject *walk(PyObject *frame, PyObject *api) {
    PyFrameObject *f = (PyFrameObject *)frame;
    Py_INCREF(f);
    Py_INCREF(api);
    while (f != NULL) {
        PyCodeObject *code = PyFrame_GetCode(f);
        PyObject *cid = PyLong_FromVoidPtr(code);
        PyObject *what = NULL;
        if (cid != NULL) {
            PyObject *e = PyDict_GetItemWithError(g_codes, cid);
            if (e != NULL && PyTuple_Check(e) && PyTuple_GET_SIZE(e) == 2) {
                what = PyTuple_GET_ITEM(e, 1);
                Py_INCREF(what);
            } else if (!PyErr_Occurred()) {
                what = PyObject_CallOneArg(g_classify, (PyObject *)code);
            }
            Py_DECREF(cid);
        }
        if (what == NULL) {
            Py_DECREF(code);
            Py_DECREF(f);
            Py_DECREF(api);
            return NULL;
        }
        if (what == Py_None) {
            Py_DECREF(what);
#if PY_VERSION_HEX >= 0x030B0000
            PyObject *lasti = PyLong_FromLong(PyFrame_GetLasti(f));   /* == f.f_lasti */
#else
            PyObject *lasti = PyObject_GetAttr((PyObject *)f, s_f_lasti);
#endif
            PyObject *site = lasti ? PyTuple_Pack(3, (PyObject *)code, lasti, api) : NULL;
            if (site != NULL)
                PyObject_GC_UnTrack(site);   /* (a code object, an int and a str) */
            Py_XDECREF(lasti);
            Py_DECREF(code);
            Py_DECREF(f);
            Py_DECREF(api);
            return site;
        }
        Py_DECREF(code);
        int named = PyObject_IsTrue(what);
        if (named < 0) {
            Py_DECREF(what);
            Py_DECREF(f);
            Py_DECREF(api);
            return NULL;
        }
        if (named > 0)
            Py_SETREF(api, what);
        else
            Py_DECREF(what);
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    Py_DECREF(api);
    Py_RETURN_NONE;
}

/* does node need a site: not in the table and not a buffer (-1: error) */
static int unsited(PyObject *n) {
    PyObject *id = PyLong_FromVoidPtr(n);
    if (id == NULL)
        return -1;
    int has = PyDict_Contains(g_sites, id);
    Py_DECREF(id);
    if (has != 0)
        return has < 0 ? -1 : 0;
    PyObject *op = get(n, s_op);
    if (op == NULL)
        return -1;
    Py_DECREF(op);
    return op != g_buffer_op;
}

static int set_site(PyObject *n, PyObject *site) {
    PyObject *id = PyLong_FromVoidPtr(n);
    int rc = id == NULL ? -1 : PyDict_SetItem(g_sites, id, site);
    Py_XDECREF(id);
    return rc;
}

/* record_from(node, frame, api): sites.record_from */
static PyObject *record_from(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyFrame_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "record_from takes a node, a frame and an api name");
        return NULL;
    }
    if (g_sites == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "native.setup_sites() was not called");
        return NULL;
    }
    PyObject *node = args[0];
    PyObject *site = walk(args[1], args[2]);
    if (site == NULL || site == Py_None)
        return site;
    PyObject *srcs = NULL, *stack = NULL, *result = NULL;
    if (set_site(node, site) < 0)
        goto done;
    srcs = get(node, s_srcs);
    if (srcs == NULL || !PyTuple_Check(srcs))
        goto done;
    int need = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(srcs) && !need; i++)
        if ((need = unsited(PyTuple_GET_ITEM(srcs, i))) < 0)
            goto done;
    /* the nodes a composite op built on the way share its line; the walk stops at nodes
     * that have one, so each is visited once */
    if (need) {
        stack = PySequence_List(srcs);
        if (stack == NULL)
            goto done;
        while (PyList_GET_SIZE(stack) > 0) {
            PyObject *n = pop(stack);
            if (n == NULL)
                goto done;
            int u = unsited(n);
            int bad = u < 0 || (u > 0 && (set_site(n, site) < 0 || push_srcs(stack, n) < 0));
            Py_DECREF(n);
            if (bad)
                goto done;
        }
    }
    result = Py_None;
    Py_INCREF(result);
done:
    if (result == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "a node's srcs must be a tuple");
    Py_XDECREF(stack);
    Py_XDECREF(srcs);
    Py_DECREF(site);
    return result;
}


/* mark_backward's state: autograd's "built by a gradient rule" table by id(node), and the
 * Python function giving a rule's nodes their site from the forward node's */
static PyObject *g_backward, *g_backward_site, *g_backward_sites;

static PyObject *setup_backward(PyObject *self, PyObject *args) {
    PyObject *bw, *site_fn;
    if (!PyArg_ParseTuple(args, "O!O", &PyDict_Type, &bw, &site_fn))
        return NULL;
    PyObject *memo = PyDict_New();
    if (memo == NULL)
        return NULL;
    Py_XSETREF(g_backward_sites, memo);
    keep(&g_backward, bw);
    keep(&g_backward_site, site_fn);
    Py_RETURN_NONE;
}

/* does the memo's backward site come from the forward site s itself: the same objects but
 * for the api name (code objects compare equal across files) */
static int same_line(PyObject *site, PyObject *s) {
    if (!PyTuple_Check(site) || PyTuple_GET_SIZE(site) != PyTuple_GET_SIZE(s))
        return 0;
    for (Py_ssize_t i = 0; i + 1 < PyTuple_GET_SIZE(s); i++)
        if (PyTuple_GET_ITEM(site, i) != PyTuple_GET_ITEM(s, i))
            return 0;
    return 1;
}

/* mark_backward(nodes, like): sites.mark_backward_py */
static PyObject *mark_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "mark_backward takes nodes and the forward node");
        return NULL;
    }
    if (g_sites == NULL || g_backward == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "native.setup_sites()/setup_backward() not called");
        return NULL;
    }
    PyObject *nodes = PySequence_Fast(args[0], "mark_backward takes a sequence of nodes");
    if (nodes == NULL)
        return NULL;
    PyObject *site = NULL, *result = NULL;
    PyObject *lid = PyLong_FromVoidPtr(args[1]);
    PyObject *s = lid ? PyDict_GetItemWithError(g_sites, lid) : NULL;   /* borrowed */
    Py_XDECREF(lid);
    if (s == NULL && PyErr_Occurred())
        goto done;
    if (s != NULL) {
        /* one per forward site (a site's text depends only on it when it names its api): a
         * memo, emptied when it grows past the lines a program has */
        Py_INCREF(s);
        int memo = PyTuple_Check(s) && PyTuple_GET_SIZE(s) > 0 &&
                   PyUnicode_Check(PyTuple_GET_ITEM(s, PyTuple_GET_SIZE(s) - 1)) &&
                   PyUnicode_GET_LENGTH(PyTuple_GET_ITEM(s, PyTuple_GET_SIZE(s) - 1)) > 0;
        site = memo ? PyDict_GetItemWithError(g_backward_sites, s) : NULL;
        if (site != NULL && !same_line(site, s))
            site = NULL;   /* an equal site of another code object (equal code in two files) */
        if (site != NULL)
            Py_INCREF(site);
        else if (!PyErr_Occurred()) {
            PyObject *argv[2] = {s, args[1]};
            site = PyObject_Vectorcall(g_backward_site, argv, 2, NULL);
            if (site != NULL && memo) {
                if (PyDict_GET_SIZE(g_backward_sites) > 4096)
                    PyDict_Clear(g_backward_sites);
                if (PyDict_SetItem(g_backward_sites, s, site) < 0)
                    Py_CLEAR(site);
            }
        }
        Py_DECREF(s);
        if (site == NULL)
            goto done;
    }
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(nodes); i++) {
        PyObject *id = PyLong_FromVoidPtr(PySequence_Fast_GET_ITEM(nodes, i));
        if (id == NULL)
            goto done;
        int has = PyDict_Contains(g_sites, id);
        int bad = has < 0 || (has == 0 && (PyDict_SetItem(g_backward, id, Py_True) < 0 ||
                                           (site && PyDict_SetItem(g_sites, id, site) < 0)));
        Py_DECREF(id);
        if (bad)
            goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    Py_XDECREF(site);
    Py_DECREF(nodes);
    return result;
}
