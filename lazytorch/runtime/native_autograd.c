/* native_autograd.c: autograd's bookkeeping loops (autograd.tracked_py, _grad_graph_py).
 *
 * The tables are autograd's own dicts keyed by id(node) (the Python versions read and write
 * the same ones, so any mix of the two is correct); the gradient rules, the error messages
 * and the source-line marking stay in Python and are called from here. */

static PyObject *g_leaves, *g_memo, *g_stop, *g_no_grad, *g_consumed, *g_born, *g_clock;
static PyObject *g_rules, *g_complain, *g_mark, *g_ag_node, *g_cast, *g_add, *s_kind;
/* on_new_tensor's: the table of op results, grad mode's thread-local state, DETACH */
static PyObject *g_results, *g_state, *g_detach_op, *s_enabled, *s_node, *s_requires_grad,
    *s_grad_node;

/* setup_autograd(leaves, memo, STOP, NO_GRAD, consumed, born, clock, GRAD, complain,
 *                mark_backward, new_node, CAST, ADD) */
static PyObject *setup_autograd(PyObject *self, PyObject *args) {
    PyObject *a[13];
    if (!PyArg_ParseTuple(args, "O!O!OOO!O!OO!OOOOO", &PyDict_Type, &a[0], &PyDict_Type, &a[1],
                          &a[2], &a[3], &PyDict_Type, &a[4], &PyDict_Type, &a[5], &a[6],
                          &PyDict_Type, &a[7], &a[8], &a[9], &a[10], &a[11], &a[12]))
        return NULL;
    if (!PyAnySet_Check(a[2]) || !PyAnySet_Check(a[3]) || !PyIter_Check(a[6])) {
        PyErr_SetString(PyExc_TypeError, "STOP and NO_GRAD must be sets, clock an iterator");
        return NULL;
    }
    if (s_kind == NULL && (s_kind = PyUnicode_InternFromString("kind")) == NULL)
        return NULL;
    PyObject **slots[13] = {&g_leaves, &g_memo, &g_stop, &g_no_grad, &g_consumed, &g_born,
                            &g_clock, &g_rules, &g_complain, &g_mark, &g_ag_node, &g_cast,
                            &g_add};
    for (int i = 0; i < 13; i++)
        keep(slots[i], a[i]);
    Py_RETURN_NONE;
}

/* setup_tensors(results, grad mode state, DETACH): for on_new_tensor */
static PyObject *setup_tensors(PyObject *self, PyObject *args) {
    PyObject *results, *state, *detach;
    if (!PyArg_ParseTuple(args, "O!OO", &PyDict_Type, &results, &state, &detach))
        return NULL;
    const char *names[] = {"enabled", "_node", "_requires_grad", "_grad_node"};
    PyObject **slots[] = {&s_enabled, &s_node, &s_requires_grad, &s_grad_node};
    for (int i = 0; i < 4; i++)
        if (*slots[i] == NULL && (*slots[i] = PyUnicode_InternFromString(names[i])) == NULL)
            return NULL;
    keep(&g_results, results);
    keep(&g_state, state);
    keep(&g_detach_op, detach);
    Py_RETURN_NONE;
}

static int id_in(PyObject *d, PyObject *n) {
    PyObject *id = PyLong_FromVoidPtr(n);
    if (id == NULL)
        return -1;
    int has = PyDict_Contains(d, id);
    Py_DECREF(id);
    return has;
}

/* d.get(id(n)) as a borrowed reference, NULL if absent (check PyErr_Occurred) */
static PyObject *id_get(PyObject *d, PyObject *n) {
    PyObject *id = PyLong_FromVoidPtr(n);
    if (id == NULL)
        return NULL;
    PyObject *v = PyDict_GetItemWithError(d, id);
    Py_DECREF(id);
    return v;
}

static int id_set(PyObject *d, PyObject *n, PyObject *v) {
    PyObject *id = PyLong_FromVoidPtr(n);
    int rc = id == NULL ? -1 : PyDict_SetItem(d, id, v);
    Py_XDECREF(id);
    return rc;
}

/* is op in the frozenset (the op is read from the node) */
static int op_in(PyObject *n, PyObject *set) {
    PyObject *op = get(n, s_op);
    if (op == NULL)
        return -1;
    int has = PySet_Contains(set, op);
    Py_DECREF(op);
    return has;
}

/* the memo's value for a node whose sources are known: some source needs a gradient, its
 * dtype is a float one and its op carries gradients */
static int conclude(PyObject *n, int r) {
    if (!r)
        return 0;
    PyObject *dtype = get(n, s_dtype);
    PyObject *kind = dtype ? PyObject_GetAttr(dtype, s_kind) : NULL;
    Py_XDECREF(dtype);
    if (kind == NULL)
        return -1;
    int f = PyUnicode_Check(kind) && PyUnicode_CompareWithASCIIString(kind, "f") == 0;
    Py_DECREF(kind);
    if (!f)
        return 0;
    int no = op_in(n, g_no_grad);
    return no < 0 ? -1 : !no;
}

typedef struct {
    PyObject *node;   /* borrowed: the caller's node keeps its graph alive */
    PyObject *srcs;   /* owned */
    Py_ssize_t i;
    int r;            /* a source seen so far needs a gradient */
} TFrame;

/* autograd.tracked_py: 1, 0, or -1 with an exception */
static int is_tracked(PyObject *n) {
    if (PyDict_GET_SIZE(g_leaves) == 0)
        return 0;
    int has = id_in(g_leaves, n);
    if (has != 0)
        return has;
    PyObject *v = id_get(g_memo, n);
    if (v != NULL)
        return v == Py_True;
    if (PyErr_Occurred())
        return -1;
    int stop = op_in(n, g_stop);
    if (stop != 0)
        return stop < 0 ? -1 : 0;
    Py_ssize_t cap = 64, sp = 0;
    TFrame *stack = PyMem_Malloc(cap * sizeof(TFrame));
    int result = -1;
    if (stack == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *srcs = get(n, s_srcs);
    if (srcs == NULL || !PyTuple_Check(srcs)) {
        Py_XDECREF(srcs);
        goto done;
    }
    stack[sp++] = (TFrame){n, srcs, 0, 0};
    while (sp > 0) {
        TFrame *f = &stack[sp - 1];
        PyObject *next = NULL;
        while (f->i < PyTuple_GET_SIZE(f->srcs) && next == NULL) {
            PyObject *s = PyTuple_GET_ITEM(f->srcs, f->i++);
            int leaf = id_in(g_leaves, s);
            if (leaf < 0)
                goto done;
            if (leaf) {
                f->r = 1;
                continue;
            }
            PyObject *known = id_get(g_memo, s);
            if (known != NULL) {
                f->r |= known == Py_True;
                continue;
            }
            if (PyErr_Occurred())
                goto done;
            int s_stop = op_in(s, g_stop);
            if (s_stop < 0)
                goto done;
            if (!s_stop)
                next = s;
        }
        if (next != NULL) {
            PyObject *more = get(next, s_srcs);
            if (more == NULL)
                goto done;
            if (!PyTuple_Check(more)) {
                Py_DECREF(more);
                PyErr_SetString(PyExc_TypeError, "a node's srcs must be a tuple");
                goto done;
            }
            if (reserve(&stack, &cap, sp + 1, sizeof *stack) < 0) {
                Py_DECREF(more);
                goto done;
            }
            stack[sp++] = (TFrame){next, more, 0, 0};
            continue;
        }
        int r = conclude(f->node, f->r);
        if (r < 0 || id_set(g_memo, f->node, r ? Py_True : Py_False) < 0)
            goto done;
        Py_CLEAR(f->srcs);
        sp--;
        if (sp > 0)
            stack[sp - 1].r |= r;
        else
            result = r;
    }
done:
    if (result < 0 && !PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "a node's srcs must be a tuple");
    while (sp > 0)
        Py_XDECREF(stack[--sp].srcs);
    PyMem_Free(stack);
    return result;
}

static PyObject *tracked(PyObject *self, PyObject *n) {
    if (g_leaves == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "native.setup_autograd() was not called");
        return NULL;
    }
    int r = is_tracked(n);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}

/* does source s receive a gradient: a leaf, or tracked */
static int needs_grad(PyObject *s) {
    int leaf = id_in(g_leaves, s);
    return leaf != 0 ? leaf : is_tracked(s);
}

/* new node by the constructor autograd was set up with */
static PyObject *make(PyObject *op, PyObject *src0, PyObject *src1, PyObject *arg,
                      PyObject *like_shape, PyObject *dtype) {
    PyObject *srcs = src1 ? PyTuple_Pack(2, src0, src1) : PyTuple_Pack(1, src0);
    if (srcs == NULL)
        return NULL;
    PyObject *argv[5] = {op, srcs, arg, like_shape, dtype};
    PyObject *n = PyObject_Vectorcall(g_ag_node, argv, 5, NULL);
    Py_DECREF(srcs);
    return n;
}

/* a + b (either may be NULL: then the other), a new reference */
static PyObject *add(PyObject *a, PyObject *b) {
    if (a == NULL) {
        Py_INCREF(b);
        return b;
    }
    PyObject *shape = get(a, s_shape), *dtype = shape ? get(a, s_dtype) : NULL;
    PyObject *r = dtype ? make(g_add, a, b, Py_None, shape, dtype) : NULL;
    Py_XDECREF(shape);
    Py_XDECREF(dtype);
    return r;
}

/* the walk of _grad_graph_py: `live` the nodes needing a gradient, sources first, and
 * `live_set` every node it visited. Entries are (node, needs): needs -1 for a node not yet
 * looked at, else whether it needs a gradient (its sources are then done). */
typedef struct {
    PyObject *node;   /* borrowed */
    int needs;
} WEntry;

static int grad_walk(PyObject *roots, PyObject *live, PyObject *live_set) {
    PyObject *seen = PySet_New(NULL);
    Py_ssize_t cap = 64, sp = 0;
    WEntry *stack = PyMem_Malloc(cap * sizeof(WEntry));
    int rc = -1;
    if (stack == NULL)
        PyErr_NoMemory();
    if (seen == NULL || stack == NULL)
        goto done;
    for (Py_ssize_t o = 0; o < PyList_GET_SIZE(roots); o++) {
        PyObject *out = PyList_GET_ITEM(roots, o);
        int had = PySet_Contains(seen, out);
        if (had != 0) {
            if (had < 0)
                goto done;
            continue;
        }
        sp = 0;
        stack[sp++] = (WEntry){out, -1};
        while (sp > 0) {
            WEntry e = stack[--sp];
            if (e.needs >= 0) {
                if (PySet_Add(live_set, e.node) < 0 ||
                    (e.needs && PyList_Append(live, e.node) < 0))
                    goto done;
                continue;
            }
            had = PySet_Contains(seen, e.node);
            if (had != 0) {
                if (had < 0)
                    goto done;
                continue;
            }
            if (PySet_Add(seen, e.node) < 0)
                goto done;
            int needs = id_in(g_leaves, e.node), leaf = needs;
            if (!leaf)
                needs = is_tracked(e.node);
            if (needs < 0)
                goto done;
            PyObject *srcs = needs && !leaf ? get(e.node, s_srcs) : NULL;
            if (needs && !leaf && (srcs == NULL || !PyTuple_Check(srcs))) {
                Py_XDECREF(srcs);
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "a node's srcs must be a tuple");
                goto done;
            }
            Py_ssize_t ns = srcs ? PyTuple_GET_SIZE(srcs) : 0;
            if (reserve(&stack, &cap, sp + 1 + ns, sizeof *stack) < 0) {
                Py_XDECREF(srcs);
                goto done;
            }
            stack[sp++] = (WEntry){e.node, needs};
            for (Py_ssize_t i = ns - 1; i >= 0; i--) {
                PyObject *s = PyTuple_GET_ITEM(srcs, i);
                int s_seen = PySet_Contains(seen, s);
                if (s_seen < 0) {
                    Py_DECREF(srcs);
                    goto done;
                }
                if (!s_seen)
                    stack[sp++] = (WEntry){s, -1};
            }
            Py_XDECREF(srcs);   /* (the node keeps its sources alive) */
        }
    }
    rc = 0;
done:
    PyMem_Free(stack);
    Py_XDECREF(seen);
    return rc;
}

/* a node a previous backward freed, and no op returned since: the error _complain raises */
static int freed(PyObject *live) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(live); i++) {
        PyObject *n = PyList_GET_ITEM(live, i);
        PyObject *c = id_get(g_consumed, n);
        if (c == NULL) {
            if (PyErr_Occurred())
                return -1;
            continue;
        }
        PyObject *b = id_get(g_born, n);
        if (b == NULL) {
            if (PyErr_Occurred())
                return -1;
            continue;   /* (born.get(id, c) < c is false) */
        }
        Py_INCREF(c);
        Py_INCREF(b);
        int lt = PyObject_RichCompareBool(b, c, Py_LT);
        Py_DECREF(c);
        Py_DECREF(b);
        if (lt <= 0) {
            if (lt < 0)
                return -1;
            continue;
        }
        PyObject *r = PyObject_CallFunction(g_complain, "sO", "freed", n);
        Py_XDECREF(r);
        if (r != NULL)
            PyErr_SetString(PyExc_RuntimeError, "backward through freed nodes");
        return -1;
    }
    return 0;
}

/* the nodes a rule built (not known before, not in the forward walk), for mark_backward */
static PyObject *built(PyObject *results, PyObject *known, PyObject *live_set) {
    PyObject *made = PyList_New(0), *stack = PyList_New(0);
    if (made == NULL || stack == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(results); i++) {
        PyObject *r = PyTuple_GET_ITEM(results, i);
        if (r != Py_None && PyList_Append(stack, r) < 0)
            goto fail;
    }
    while (PyList_GET_SIZE(stack) > 0) {
        PyObject *m = pop(stack);
        if (m == NULL)
            goto fail;
        int in = PySet_Contains(known, m);
        if (in == 0)
            in = PySet_Contains(live_set, m);
        int bad = in < 0 || (in == 0 && (PySet_Add(known, m) < 0 ||
                                         PyList_Append(made, m) < 0 || push_srcs(stack, m) < 0));
        Py_DECREF(m);
        if (bad)
            goto fail;
    }
    Py_DECREF(stack);
    return made;
fail:
    Py_XDECREF(made);
    Py_XDECREF(stack);
    return NULL;
}

/* acc[s] += gs for each source s of n that needs a gradient (cast to s's dtype) */
static int accumulate(PyObject *acc, PyObject *srcs, PyObject *results) {
    Py_ssize_t k = PyTuple_GET_SIZE(srcs), nr = PyTuple_GET_SIZE(results);
    for (Py_ssize_t i = 0; i < k && i < nr; i++) {
        PyObject *s = PyTuple_GET_ITEM(srcs, i), *gs = PyTuple_GET_ITEM(results, i);
        if (gs == Py_None)
            continue;
        int needs = needs_grad(s);
        if (needs <= 0) {
            if (needs < 0)
                return -1;
            continue;
        }
        PyObject *sd = get(s, s_dtype), *gd = sd ? get(gs, s_dtype) : NULL;
        if (gd == NULL) {
            Py_XDECREF(sd);
            return -1;
        }
        Py_INCREF(gs);
        if (gd != sd) {
            PyObject *shape = get(gs, s_shape);
            PyObject *cast = shape ? make(g_cast, gs, NULL, sd, shape, sd) : NULL;
            Py_XDECREF(shape);
            Py_SETREF(gs, cast);
        }
        Py_DECREF(sd);
        Py_DECREF(gd);
        if (gs == NULL)
            return -1;
        PyObject *a = PyDict_GetItemWithError(acc, s);   /* borrowed */
        if (a == NULL && PyErr_Occurred()) {
            Py_DECREF(gs);
            return -1;
        }
        PyObject *sum = add(a, gs);
        Py_DECREF(gs);
        if (sum == NULL || PyDict_SetItem(acc, s, sum) < 0) {
            Py_XDECREF(sum);
            return -1;
        }
        Py_DECREF(sum);
    }
    return 0;
}

/* one node's rule: its gradient g flows to its sources; 0, or -1 with an exception */
static int backprop(PyObject *n, PyObject *g, PyObject *acc, PyObject *known,
                    PyObject *live_set) {
    PyObject *op = get(n, s_op);
    if (op == NULL)
        return -1;
    int no = PySet_Contains(g_no_grad, op);
    PyObject *rule = no == 0 ? PyDict_GetItemWithError(g_rules, op) : NULL;
    Py_DECREF(op);
    if (no != 0)
        return no < 0 ? -1 : 0;
    if (rule == NULL) {
        if (!PyErr_Occurred()) {
            PyObject *r = PyObject_CallFunction(g_complain, "sO", "rule", n);
            Py_XDECREF(r);
            if (r != NULL)
                PyErr_SetString(PyExc_RuntimeError, "no derivative rule");
        }
        return -1;
    }
    PyObject *argv[2] = {n, g};
    Py_INCREF(rule);   /* (borrowed from GRAD, which the rule's code could change) */
    PyObject *res = PyObject_Vectorcall(rule, argv, 2, NULL);
    Py_DECREF(rule);
    PyObject *results = res ? PySequence_Tuple(res) : NULL;   /* (a copy nothing can change) */
    Py_XDECREF(res);
    if (results == NULL)
        return -1;
    PyObject *made = built(results, known, live_set), *srcs = NULL;
    int rc = -1;
    if (made == NULL)
        goto done;
    PyObject *margv[2] = {made, n};
    PyObject *r = PyObject_Vectorcall(g_mark, margv, 2, NULL);
    if (r == NULL)
        goto done;
    Py_DECREF(r);
    srcs = get(n, s_srcs);
    if (srcs == NULL)
        goto done;
    if (!PyTuple_Check(srcs)) {
        PyErr_SetString(PyExc_TypeError, "a node's srcs must be a tuple");
        goto done;
    }
    rc = accumulate(acc, srcs, results);
done:
    Py_XDECREF(srcs);
    Py_XDECREF(made);
    Py_DECREF(results);
    return rc;
}

/* should n's gradient stop at n: a leaf, or a source-less target of autograd.grad */
static int stops(PyObject *n, PyObject *targets) {
    int leaf = id_in(g_leaves, n);
    if (leaf != 0 || targets == Py_None)
        return leaf;
    int in = PySequence_Contains(targets, n);
    if (in <= 0)
        return in;
    PyObject *srcs = get(n, s_srcs);
    if (srcs == NULL)
        return -1;
    int none = PyObject_Not(srcs);
    Py_DECREF(srcs);
    return none;
}

/* grad_graph(roots, grads, targets, retain_graph): autograd._grad_graph_py */
static PyObject *grad_graph(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "grad_graph takes roots, grads, targets, retain_graph");
        return NULL;
    }
    if (g_leaves == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "native.setup_autograd() was not called");
        return NULL;
    }
    PyObject *targets = args[2];
    int retain = PyObject_IsTrue(args[3]);
    if (retain < 0)
        return NULL;
    PyObject *roots = PySequence_List(args[0]), *grads = PySequence_List(args[1]);
    PyObject *live = PyList_New(0), *live_set = PySet_New(NULL), *acc = PyDict_New();
    PyObject *known = grads ? PySet_New(grads) : NULL, *result = NULL;
    if (!roots || !grads || !live || !live_set || !acc || !known)
        goto done;
    if (grad_walk(roots, live, live_set) < 0 || freed(live) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(roots) && i < PyList_GET_SIZE(grads); i++) {
        PyObject *r = PyList_GET_ITEM(roots, i);
        PyObject *a = PyDict_GetItemWithError(acc, r);
        if (a == NULL && PyErr_Occurred())
            goto done;
        PyObject *sum = add(a, PyList_GET_ITEM(grads, i));
        if (sum == NULL || PyDict_SetItem(acc, r, sum) < 0) {
            Py_XDECREF(sum);
            goto done;
        }
        Py_DECREF(sum);
    }
    for (Py_ssize_t i = PyList_GET_SIZE(live) - 1; i >= 0; i--) {
        PyObject *n = PyList_GET_ITEM(live, i);
        PyObject *g = PyDict_GetItemWithError(acc, n);
        if (g == NULL) {
            if (PyErr_Occurred())
                goto done;
            continue;
        }
        int stop = stops(n, targets);
        if (stop < 0)
            goto done;
        if (stop)
            continue;
        Py_INCREF(g);   /* (the rule's results may replace acc's entry for n) */
        int err = backprop(n, g, acc, known, live_set);
        Py_DECREF(g);
        if (err < 0)
            goto done;
    }
    if (!retain) {
        PyObject *now = PyIter_Next(g_clock);
        if (now == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_RuntimeError, "autograd's clock stopped");
            goto done;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(live); i++) {
            PyObject *n = PyList_GET_ITEM(live, i);
            int leaf = id_in(g_leaves, n);
            if (leaf < 0 || (!leaf && id_set(g_consumed, n, now) < 0)) {
                Py_DECREF(now);
                goto done;
            }
        }
        Py_DECREF(now);
    }
    result = acc;
    acc = NULL;
done:
    Py_XDECREF(roots);
    Py_XDECREF(grads);
    Py_XDECREF(live);
    Py_XDECREF(live_set);
    Py_XDECREF(acc);
    Py_XDECREF(known);
    return result;
}

/* the internal nodes of a new op result n that a backward consumed are born again with it
 * (autograd.on_new_tensor_py: a re-run forward is a fresh graph) */
static int reborn(PyObject *n, PyObject *now) {
    PyObject *stack = PyList_New(0);
    int rc = -1;
    if (stack == NULL || push_srcs(stack, n) < 0)
        goto done;
    while (PyList_GET_SIZE(stack) > 0) {
        PyObject *m = pop(stack);
        if (m == NULL)
            goto done;
        int bad = 0, again = 0;
        PyObject *id = PyLong_FromVoidPtr(m);
        PyObject *c = id ? PyDict_GetItemWithError(g_consumed, id) : NULL;
        bad = id == NULL || (c == NULL && PyErr_Occurred());
        if (!bad && c != NULL) {
            PyObject *b = PyDict_GetItemWithError(g_born, id);
            Py_INCREF(c);
            Py_XINCREF(b);
            /* born.get(j, 0) < c: the clock starts at 1, so a missing entry is older */
            int older = b == NULL ? (PyErr_Occurred() ? -1 : 1)
                                  : PyObject_RichCompareBool(b, c, Py_LT);
            Py_XDECREF(b);
            Py_DECREF(c);
            int leaf = older > 0 ? PyDict_Contains(g_leaves, id) : 0;
            int result = older > 0 && leaf == 0 ? PyDict_Contains(g_results, id) : 0;
            bad = older < 0 || leaf < 0 || result < 0;
            again = !bad && older > 0 && !leaf && !result;
            if (again)
                bad = PyDict_SetItem(g_born, id, now) < 0 || push_srcs(stack, m) < 0;
        }
        Py_XDECREF(id);
        Py_DECREF(m);
        if (bad)
            goto done;
    }
    rc = 0;
done:
    Py_XDECREF(stack);
    return rc;
}

/* on_new_tensor(t): autograd.on_new_tensor_py, for every op result */
static PyObject *on_new_tensor(PyObject *self, PyObject *t) {
    if (g_results == NULL || g_leaves == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "native.setup_tensors() was not called");
        return NULL;
    }
    PyObject *n = PyObject_GetAttr(t, s_node), *result = NULL, *now = NULL;
    if (n == NULL)
        return NULL;
    int tr = is_tracked(n);
    if (tr <= 0) {
        Py_DECREF(n);
        if (tr < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *en = PyObject_GetAttr(g_state, s_enabled);
    int enabled = en ? PyObject_IsTrue(en) : -1;
    Py_XDECREF(en);
    if (enabled < 0)
        goto done;
    if (!enabled) {
        PyObject *shape = get(n, s_shape), *dtype = shape ? get(n, s_dtype) : NULL;
        PyObject *d = dtype ? make(g_detach_op, n, NULL, Py_None, shape, dtype) : NULL;
        int bad = d == NULL || PyObject_SetAttr(t, s_node, d) < 0;
        Py_XDECREF(shape);
        Py_XDECREF(dtype);
        Py_XDECREF(d);
        if (!bad)
            result = Py_None;
        goto done;
    }
    if (PyObject_SetAttr(t, s_requires_grad, Py_True) < 0 ||
        PyObject_SetAttr(t, s_grad_node, n) < 0)
        goto done;
    now = PyIter_Next(g_clock);
    if (now == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "autograd's clock stopped");
        goto done;
    }
    if (id_set(g_born, n, now) < 0 || id_set(g_results, n, Py_True) < 0)
        goto done;
    if (PyDict_GET_SIZE(g_consumed) != 0 && reborn(n, now) < 0)
        goto done;
    result = Py_None;
done:
    Py_XDECREF(now);
    Py_DECREF(n);
    Py_XINCREF(result);
    return result;
}
