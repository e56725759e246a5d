/*
 * mlmon_logging._speedups: the per-event half of FeatureSplitter, and the per-row splicing of
 * log_predictions' rendered feature columns (join_rows, below), in C (optional).
 *
 * Why hand-written C: splitting a plain feature dict into numeric and categorical
 * dicts by a cached plan is the largest cost of the emitter's writer thread, and in
 * Python it stays object-by-object work (a names list, a types list, a dict copy,
 * pops): about 17,000 instructions for 20 features (callgrind), where this function
 * needs about 5,500. No maintained library does this split. The module
 * is optional: setup.py builds it when a compiler is at hand, and without it
 * mlmon_logging.plans does the same in Python (tests/emitter/test_speedups.py
 * checks both give the same result).
 *
 * apply_plan(features, names, kinds) -> dict | None
 *   features: the feature dict of one event.
 *   names:    the names of the plan's shape, a list, in the dict's order.
 *   kinds:    bytes, one per name: 'f' a float, 'i' an int (written as a float),
 *             's' a categorical string.
 * Returns {"numeric": {...}, "categorical": {...}} (empty groups left out) when
 * features is an exact dict with exactly these names in this order, each value of
 * exactly its kind (no subclasses: bool is not an int here) and every float finite;
 * else None, and the caller takes its Python path, which decides what to do.
 * Keys must be exact str: no user __eq__ or __hash__ runs while the dict is walked.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

static PyObject *numeric_key;      /* "numeric" */
static PyObject *categorical_key;  /* "categorical" */

static PyObject *
apply_plan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "apply_plan(features, names, kinds) takes 3 arguments");
        return NULL;
    }
    PyObject *features = args[0], *names = args[1], *kinds = args[2];
    if (!PyList_CheckExact(names) || !PyBytes_CheckExact(kinds)) {
        PyErr_SetString(PyExc_TypeError, "apply_plan: names must be a list and kinds bytes");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(names);
    if (PyBytes_GET_SIZE(kinds) != n) {
        PyErr_SetString(PyExc_ValueError, "apply_plan: one kind per name");
        return NULL;
    }
    if (!PyDict_CheckExact(features) || PyDict_GET_SIZE(features) != n) {
        Py_RETURN_NONE;
    }
    const char *kind = PyBytes_AS_STRING(kinds);
    Py_ssize_t n_categorical = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        n_categorical += kind[k] == 's';
    }
    PyObject *result = PyDict_New();
    if (result == NULL || n == 0) {
        return result;
    }
    /* Mostly numbers: copy the dict whole (one C-level clone) and move the strings out
     * as the one pass over it checks names, order and kinds. All strings: copy it as the
     * categorical dict. A dict that declines half-way costs the copy, once per new shape. */
    PyObject *numeric = NULL, *categorical = NULL;
    if (n_categorical == n) {
        categorical = PyDict_Copy(features);
    }
    else {
        numeric = PyDict_Copy(features);
        categorical = n_categorical ? PyDict_New() : NULL;
    }
    if ((n_categorical < n && numeric == NULL) || (n_categorical && categorical == NULL)) {
        goto fail;
    }
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;
    while (PyDict_Next(features, &pos, &key, &value)) {
        PyObject *name = PyList_GET_ITEM(names, i);
        if (!PyUnicode_CheckExact(key)) {
            goto decline;
        }
        if (key != name) {
            /* Exact str on both sides: the comparison runs no Python code. */
            if (!PyUnicode_CheckExact(name) || PyUnicode_Compare(key, name) != 0) {
                if (PyErr_Occurred()) {
                    goto fail;
                }
                goto decline;
            }
        }
        switch (kind[i]) {
        case 'f':
            if (!PyFloat_CheckExact(value) || !isfinite(PyFloat_AS_DOUBLE(value))) {
                goto decline;
            }
            break;
        case 'i': {
            if (!PyLong_CheckExact(value)) {
                goto decline;
            }
            double as_double = PyLong_AsDouble(value);
            if (as_double == -1.0 && PyErr_Occurred()) {
                if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
                    goto fail;
                }
                PyErr_Clear();  /* beyond the float range: the Python path flags it */
                goto decline;
            }
            PyObject *as_float = PyFloat_FromDouble(as_double);
            if (as_float == NULL || PyDict_SetItem(numeric, key, as_float) < 0) {
                Py_XDECREF(as_float);
                goto fail;
            }
            Py_DECREF(as_float);
            break;
        }
        case 's':
            if (!PyUnicode_CheckExact(value)) {
                goto decline;
            }
            if (numeric != NULL &&
                (PyDict_SetItem(categorical, key, value) < 0 || PyDict_DelItem(numeric, key) < 0)) {
                goto fail;
            }
            break;
        default:
            PyErr_Format(PyExc_ValueError, "apply_plan: unknown kind %c", kind[i]);
            goto fail;
        }
        i++;
    }
    if ((numeric != NULL && PyDict_SetItem(result, numeric_key, numeric) < 0) ||
        (categorical != NULL && PyDict_SetItem(result, categorical_key, categorical) < 0)) {
        goto fail;
    }
    Py_XDECREF(numeric);
    Py_XDECREF(categorical);
    return result;
decline:
    Py_XDECREF(numeric);
    Py_XDECREF(categorical);
    Py_DECREF(result);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(numeric);
    Py_XDECREF(categorical);
    Py_XDECREF(result);
    return NULL;
}

/*
 * join_rows(pieces, columns, rows) -> list of bytes
 *   The rows of a log_predictions slice's features as JSON lines (mlmon_logging/blocks.py,
 *   render_rows): columns are k JSON arrays as orjson wrote them (orjson.dumps(list)), pieces
 *   the k + 1 literal bytes around the values; row r is
 *   pieces[0] + value r of column 0 + pieces[1] + ... + value r of column k-1 + pieces[k].
 *   A value is a JSON number, null or string (cut by its closing quote, escapes skipped).
 *   Why: in Python the columns are cut into a bytes object per value and each row is put
 *   together by a bytes % (about 1 us a row of 20 values); here each row is one allocation
 *   and k + 1 copies.
 */
static Py_ssize_t
value_end(const char *text, Py_ssize_t at, Py_ssize_t size)
{
    /* The end (exclusive) of the JSON value starting at text[at], or -1. */
    if (at >= size) {
        return -1;
    }
    if (text[at] == '"') {
        for (Py_ssize_t j = at + 1; j < size; j++) {
            if (text[j] == '\\') {
                j++;
            }
            else if (text[j] == '"') {
                return j + 1;
            }
        }
        return -1;
    }
    Py_ssize_t j = at;
    while (j < size && text[j] != ',' && text[j] != ']') {
        j++;
    }
    return j < size && j > at ? j : -1;
}

static PyObject *
join_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "join_rows(pieces, columns, rows) takes 3 arguments");
        return NULL;
    }
    PyObject *pieces = args[0], *columns = args[1];
    Py_ssize_t rows = PyLong_AsSsize_t(args[2]);
    if (rows == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (!PyList_CheckExact(pieces) || !PyList_CheckExact(columns) || rows < 0 ||
        PyList_GET_SIZE(pieces) != PyList_GET_SIZE(columns) + 1) {
        PyErr_SetString(PyExc_TypeError, "join_rows: pieces and columns must be lists, one more piece than columns");
        return NULL;
    }
    Py_ssize_t k = PyList_GET_SIZE(columns), fixed = 0;
    for (Py_ssize_t c = 0; c <= k; c++) {
        PyObject *piece = PyList_GET_ITEM(pieces, c);
        if (!PyBytes_CheckExact(piece)) {
            PyErr_SetString(PyExc_TypeError, "join_rows: pieces must be bytes");
            return NULL;
        }
        fixed += PyBytes_GET_SIZE(piece);
    }
    for (Py_ssize_t c = 0; c < k; c++) {
        PyObject *column = PyList_GET_ITEM(columns, c);
        if (!PyBytes_CheckExact(column) || PyBytes_GET_SIZE(column) < 2 || PyBytes_AS_STRING(column)[0] != '[') {
            PyErr_SetString(PyExc_TypeError, "join_rows: columns must be JSON arrays (bytes)");
            return NULL;
        }
    }
    /* Per column the cursor (the next value's start) and this row's value's end. */
    Py_ssize_t *at = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(2 * k + 1));
    PyObject *out = PyList_New(rows);
    if (at == NULL || out == NULL) {
        PyMem_Free(at);
        Py_XDECREF(out);
        return PyErr_NoMemory();
    }
    Py_ssize_t *end = at + k;
    for (Py_ssize_t c = 0; c < k; c++) {
        at[c] = 1;
    }
    for (Py_ssize_t r = 0; r < rows; r++) {
        Py_ssize_t size = fixed;
        for (Py_ssize_t c = 0; c < k; c++) {
            PyObject *column = PyList_GET_ITEM(columns, c);
            end[c] = value_end(PyBytes_AS_STRING(column), at[c], PyBytes_GET_SIZE(column));
            if (end[c] < 0) {
                PyErr_Format(PyExc_ValueError, "join_rows: column %zd has no value for row %zd", c, r);
                goto fail;
            }
            size += end[c] - at[c];
        }
        PyObject *line = PyBytes_FromStringAndSize(NULL, size);
        if (line == NULL) {
            goto fail;
        }
        char *w = PyBytes_AS_STRING(line);
        for (Py_ssize_t c = 0; c <= k; c++) {
            PyObject *piece = PyList_GET_ITEM(pieces, c);
            memcpy(w, PyBytes_AS_STRING(piece), (size_t)PyBytes_GET_SIZE(piece));
            w += PyBytes_GET_SIZE(piece);
            if (c < k) {
                memcpy(w, PyBytes_AS_STRING(PyList_GET_ITEM(columns, c)) + at[c], (size_t)(end[c] - at[c]));
                w += end[c] - at[c];
                at[c] = end[c] + 1;  /* past the comma */
            }
        }
        PyList_SET_ITEM(out, r, line);
    }
    PyMem_Free(at);
    return out;
fail:
    PyMem_Free(at);
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"join_rows", (PyCFunction)(void (*)(void))join_rows, METH_FASTCALL,
     "join_rows(pieces, columns, rows) -> list of bytes, one JSON line per row"},
    {"apply_plan", (PyCFunction)(void (*)(void))apply_plan, METH_FASTCALL,
     "apply_plan(features, names, kinds) -> {'numeric': ..., 'categorical': ...} or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mlmon_logging._speedups",
    .m_doc = "Optional C speedups of mlmon_logging (see the comment at the top of _speedups.c).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    numeric_key = PyUnicode_InternFromString("numeric");
    categorical_key = PyUnicode_InternFromString("categorical");
    if (numeric_key == NULL || categorical_key == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
