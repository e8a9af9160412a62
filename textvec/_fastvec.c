/* The default word analyzer's TF-IDF transform in C: textvec.vectorizer's pure-Python path, compiled.
 *
 * Tokens are the maximal runs of two or more word characters (what scikit-learn's default pattern
 * (?u)\b\w\w+\b finds), with "word character" decided exactly as Python's re module decides \w for a
 * str pattern: Py_UNICODE_ISALNUM or '_'. No Python object is made per token: each token is hashed from
 * the string's own buffer and looked up in a table of the tokens the vocabulary's terms are made of.
 * An n-gram term is reached through a trie of token ids (prefix node, next token) -> node, so no
 * n-gram string is joined either. Counts go into a dense array with a bitmap of touched ids, which
 * yields the ids in ascending order; weights are (1 + log tf) * idf (or tf * idf), L2-normalised, as
 * scikit-learn computes them. The caller lower-cases the text (str.lower, as scikit-learn does).
 *
 * The scan, the counting and the weighting of a long text run without the GIL (RELEASE_MIN_CHARS), so
 * a thread vectorizing a large request does not stall the event loop's thread: each time that thread
 * wants the GIL back from a busy holder it waits up to a switch interval (5 ms by default). That is
 * safe because nothing there touches a Python object: the table is immutable once built, the text is
 * an immutable str the caller holds for the whole call, the Unicode class lookups read static tables,
 * and the ids and weights go into raw (GIL-free) allocations. The scratch arrays belong to the table;
 * whether they are in use is decided with the GIL held, so a second caller (another thread while the
 * GIL is released, or a finalizer run by object creation) works on freshly allocated ones. They are
 * cleared before any Python object is created.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* texts at least this long (code points) are scanned with the GIL released: below it, handing the GIL
 * back and forth would cost more than the scan (~1 us per 20 characters) */
#define RELEASE_MIN_CHARS 2048

typedef struct {
    uint32_t tag;  /* the hash's high half, never 0; 0: empty slot (the low bits chose the slot) */
    int32_t token; /* token id */
} TokSlot;

typedef struct {
    uint64_t key; /* (prefix node + 1) << 32 | token; 0: empty slot */
    int32_t node;
} EdgeSlot;

typedef struct {
    PyObject_HEAD
    /* tokens: their code points in one pool, a hash table from content to token id */
    Py_UCS4 *pool;
    Py_ssize_t *tok_start;
    Py_ssize_t *tok_len;
    uint64_t *tok_hash;
    Py_ssize_t n_tokens;
    TokSlot *tok_slots;
    size_t tok_mask;
    /* trie: nodes 0..n_tokens-1 are the one-token prefixes; node_term[node] = vocabulary id or -1 */
    EdgeSlot *edge_slots;
    size_t edge_mask;
    int32_t *node_term;
    Py_ssize_t n_nodes;
    /* weighting */
    double *idf;
    Py_ssize_t n_features;
    int ngram_lo, ngram_hi, sublinear_tf;
    /* scratch: counts per vocabulary id, bitmap of touched ids */
    int32_t *counts;
    uint64_t *touched;
    int busy;
} Table;

static const unsigned char ascii_word[128] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['_'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,
    ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* re's \w for a str pattern (sre: SRE_UNI_IS_WORD) */
static inline int is_word(Py_UCS4 ch) {
    if (ch < 128) return ascii_word[ch];
    return Py_UNICODE_ISALNUM(ch) ? 1 : 0;
}

static inline uint64_t hash_step(uint64_t h, Py_UCS4 ch) { return (h ^ (uint64_t)ch) * 0x100000001b3ULL; }
static inline uint64_t hash_final(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}
static inline uint32_t tag_of(uint64_t hash) { return (uint32_t)(hash >> 32) | 1u; }
static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static size_t table_size(Py_ssize_t n) {
    size_t size = 16;
    while (size < (size_t)n * 2 + 1) size <<= 1;
    return size;
}

/* token id of the code points text[start:start+len] (kind/data as PyUnicode_READ wants), or -1 */
/* always inlined with a constant kind, so PyUnicode_READ's test of the kind folds away */
static inline __attribute__((always_inline)) int32_t find_token(const Table *t, int kind, const void *data, Py_ssize_t start, Py_ssize_t len,
                          uint64_t hash) {
    uint32_t tag = tag_of(hash);
    size_t i = hash & t->tok_mask;
    for (;;) {
        const TokSlot *slot = &t->tok_slots[i];
        if (slot->tag == 0) return -1;
        if (slot->tag == tag && t->tok_len[slot->token] == len) {
            const Py_UCS4 *key = t->pool + t->tok_start[slot->token];
            Py_ssize_t k = 0;
            while (k < len && key[k] == PyUnicode_READ(kind, data, start + k)) k++;
            if (k == len) return slot->token;
        }
        i = (i + 1) & t->tok_mask;
    }
}

static int32_t find_edge(const Table *t, int32_t node, int32_t token) {
    uint64_t key = ((uint64_t)(uint32_t)(node + 1) << 32) | (uint32_t)token;
    size_t i = mix64(key) & t->edge_mask;
    for (;;) {
        const EdgeSlot *slot = &t->edge_slots[i];
        if (slot->key == 0) return -1;
        if (slot->key == key) return slot->node;
        i = (i + 1) & t->edge_mask;
    }
}

static void Table_dealloc(Table *t) {
    PyMem_Free(t->pool);
    PyMem_Free(t->tok_start);
    PyMem_Free(t->tok_len);
    PyMem_Free(t->tok_hash);
    PyMem_Free(t->tok_slots);
    PyMem_Free(t->edge_slots);
    PyMem_Free(t->node_term);
    PyMem_Free(t->idf);
    PyMem_Free(t->counts);
    PyMem_Free(t->touched);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static void insert_token(Table *t, int32_t id) {
    size_t i = t->tok_hash[id] & t->tok_mask;
    while (t->tok_slots[i].tag != 0) i = (i + 1) & t->tok_mask;
    t->tok_slots[i].tag = tag_of(t->tok_hash[id]);
    t->tok_slots[i].token = id;
}

/* Build-time: token id of a vocabulary part, added when new. Token content is hashed exactly as the
 * scan hashes it. */
static int32_t intern_token(Table *t, PyObject *part, Py_ssize_t *pool_used, Py_ssize_t pool_cap) {
    int kind = PyUnicode_KIND(part);
    const void *data = PyUnicode_DATA(part);
    Py_ssize_t len = PyUnicode_GET_LENGTH(part);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (Py_ssize_t k = 0; k < len; k++) h = hash_step(h, PyUnicode_READ(kind, data, k));
    h = hash_final(h);
    int32_t found = find_token(t, kind, data, 0, len, h);
    if (found >= 0) return found;
    if (*pool_used + len > pool_cap) return -2; /* cannot happen: the pool holds every character */
    int32_t id = (int32_t)t->n_tokens++;
    t->tok_start[id] = *pool_used;
    t->tok_len[id] = len;
    t->tok_hash[id] = h;
    for (Py_ssize_t k = 0; k < len; k++) t->pool[*pool_used + k] = PyUnicode_READ(kind, data, k);
    *pool_used += len;
    insert_token(t, id);
    return id;
}

static int32_t add_edge(Table *t, int32_t node, int32_t token) {
    int32_t found = find_edge(t, node, token);
    if (found >= 0) return found;
    uint64_t key = ((uint64_t)(uint32_t)(node + 1) << 32) | (uint32_t)token;
    size_t i = mix64(key) & t->edge_mask;
    while (t->edge_slots[i].key != 0) i = (i + 1) & t->edge_mask;
    int32_t id = (int32_t)t->n_nodes++;
    t->edge_slots[i].key = key;
    t->edge_slots[i].node = id;
    t->node_term[id] = -1;
    return id;
}

static PyObject *Table_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"vocabulary", "idf", "ngram_lo", "ngram_hi", "sublinear_tf", NULL};
    PyObject *vocab_in, *idf_in;
    int lo, hi, sublinear;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOiip", kwlist, &vocab_in, &idf_in, &lo, &hi, &sublinear))
        return NULL;
    if (lo < 1 || hi < lo) {
        PyErr_SetString(PyExc_ValueError, "n-gram range must satisfy 1 <= lo <= hi");
        return NULL;
    }
    PyObject *vocab = PySequence_Fast(vocab_in, "vocabulary must be a sequence of str");
    if (!vocab) return NULL;
    PyObject *idf = PySequence_Fast(idf_in, "idf must be a sequence of float");
    if (!idf) {
        Py_DECREF(vocab);
        return NULL;
    }
    Table *t = NULL;
    PyObject **parts_of = NULL; /* per term: list of its space-separated parts */
    Py_ssize_t n = PySequence_Fast_GET_SIZE(vocab);
    if (PySequence_Fast_GET_SIZE(idf) != n) {
        PyErr_SetString(PyExc_ValueError, "vocabulary and idf differ in length");
        goto fail;
    }
    if (n >= INT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "vocabulary too large");
        goto fail;
    }
    t = (Table *)type->tp_alloc(type, 0);
    if (!t) goto fail;
    t->n_features = n;
    t->ngram_lo = lo;
    t->ngram_hi = hi;
    t->sublinear_tf = sublinear;
    /* sizes: every part is at most one token and one trie node; the pool holds every character */
    Py_ssize_t n_parts = 0, n_chars = 0;
    parts_of = PyMem_Calloc(n ? n : 1, sizeof(PyObject *));
    if (!parts_of) goto nomem;
    PyObject *space = PyUnicode_FromString(" ");
    if (!space) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *term = PySequence_Fast_GET_ITEM(vocab, i);
        if (!PyUnicode_Check(term)) {
            Py_DECREF(space);
            PyErr_SetString(PyExc_TypeError, "vocabulary terms must be str");
            goto fail;
        }
        parts_of[i] = PyUnicode_Split(term, space, -1);
        if (!parts_of[i]) {
            Py_DECREF(space);
            goto fail;
        }
        n_parts += PyList_GET_SIZE(parts_of[i]);
        n_chars += PyUnicode_GET_LENGTH(term);
    }
    Py_DECREF(space);
    t->pool = PyMem_Malloc((n_chars ? n_chars : 1) * sizeof(Py_UCS4));
    t->tok_start = PyMem_Malloc((n_parts ? n_parts : 1) * sizeof(Py_ssize_t));
    t->tok_len = PyMem_Malloc((n_parts ? n_parts : 1) * sizeof(Py_ssize_t));
    t->tok_hash = PyMem_Malloc((n_parts ? n_parts : 1) * sizeof(uint64_t));
    /* sized for every part while the tokens are collected, then rebuilt for the tokens found: the
     * tables are read for every token of every request, so the smaller they are the more stays cached */
    t->tok_mask = table_size(n_parts) - 1;
    t->tok_slots = PyMem_Calloc(t->tok_mask + 1, sizeof(TokSlot));
    t->edge_mask = table_size(n_parts - n) - 1; /* a term of k parts adds at most k - 1 edges */
    t->edge_slots = PyMem_Calloc(t->edge_mask + 1, sizeof(EdgeSlot));
    /* nodes: the tokens plus one per edge, each at most one per part */
    t->node_term = PyMem_Malloc((size_t)(2 * n_parts + 1) * sizeof(int32_t));
    t->idf = PyMem_Malloc((n ? n : 1) * sizeof(double));
    t->counts = PyMem_Calloc(n ? n : 1, sizeof(int32_t));
    t->touched = PyMem_Calloc((size_t)(n / 64 + 1), sizeof(uint64_t));
    if (!t->pool || !t->tok_start || !t->tok_len || !t->tok_hash || !t->tok_slots || !t->edge_slots || !t->node_term ||
        !t->idf || !t->counts || !t->touched)
        goto nomem;
    for (Py_ssize_t i = 0; i < n; i++) {
        double w = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(idf, i));
        if (w == -1.0 && PyErr_Occurred()) goto fail;
        t->idf[i] = w;
    }
    /* pass 1: the tokens, so the one-token nodes are 0..n_tokens-1 */
    Py_ssize_t pool_used = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *parts = parts_of[i];
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(parts); k++) {
            if (intern_token(t, PyList_GET_ITEM(parts, k), &pool_used, n_chars) < 0) {
                PyErr_SetString(PyExc_RuntimeError, "token pool overflow");
                goto fail;
            }
        }
    }
    PyMem_Free(t->tok_slots);
    t->tok_mask = table_size(t->n_tokens) - 1;
    t->tok_slots = PyMem_Calloc(t->tok_mask + 1, sizeof(TokSlot));
    if (!t->tok_slots) goto nomem;
    for (Py_ssize_t k = 0; k < t->n_tokens; k++) insert_token(t, (int32_t)k);
    t->n_nodes = t->n_tokens;
    for (Py_ssize_t k = 0; k < t->n_tokens; k++) t->node_term[k] = -1;
    /* pass 2: each term's node in the trie */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *parts = parts_of[i];
        int32_t node = -1;
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(parts); k++) {
            int32_t tok = intern_token(t, PyList_GET_ITEM(parts, k), &pool_used, n_chars);
            node = k == 0 ? tok : add_edge(t, node, tok);
        }
        if (t->node_term[node] >= 0) {
            PyErr_SetString(PyExc_ValueError, "vocabulary has duplicate terms");
            goto fail;
        }
        t->node_term[node] = (int32_t)i;
    }
    for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(parts_of[i]);
    PyMem_Free(parts_of);
    Py_DECREF(vocab);
    Py_DECREF(idf);
    return (PyObject *)t;
nomem:
    PyErr_NoMemory();
fail:
    if (parts_of) {
        for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(parts_of[i]);
        PyMem_Free(parts_of);
    }
    Py_XDECREF(t);
    Py_DECREF(vocab);
    Py_DECREF(idf);
    return NULL;
}

/* Scan the text's tokens into a ring of the last ngram_hi token ids and count every vocabulary n-gram
 * that ends at each token. */
static inline __attribute__((always_inline)) void count_kind(const Table *t, const int kind, const void *data,
                                                              Py_ssize_t len, int32_t *counts, uint64_t *touched) {
    int hi = t->ngram_hi, lo = t->ngram_lo;
    int32_t ring[64]; /* ngram_hi <= 64, checked in transform */
    Py_ssize_t n_seen = 0;
    Py_ssize_t i = 0;
    while (i < len) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (!is_word(ch)) {
            i++;
            continue;
        }
        Py_ssize_t start = i;
        uint64_t h = 0xcbf29ce484222325ULL;
        do {
            h = hash_step(h, ch);
            if (++i >= len) break;
            ch = PyUnicode_READ(kind, data, i);
        } while (is_word(ch));
        if (i - start < 2) continue;
        int32_t tok = find_token(t, kind, data, start, i - start, hash_final(h));
        ring[n_seen % hi] = tok;
        n_seen++;
        /* n-grams ending here: walk from the (n-1)-th previous token forward for each n */
        for (int n = lo; n <= hi && n <= n_seen; n++) {
            int32_t node = -1;
            for (int k = n - 1; k >= 0; k--) {
                int32_t part = ring[(n_seen - 1 - k) % hi];
                if (part < 0) {
                    node = -1;
                    break;
                }
                node = k == n - 1 ? part : find_edge(t, node, part);
                if (node < 0) break;
            }
            if (node < 0) continue;
            int32_t term = t->node_term[node];
            if (term < 0) continue;
            counts[term]++;
            touched[term >> 6] |= 1ULL << (term & 63);
        }
    }
}

static void count_terms(const Table *t, PyObject *text, int32_t *counts, uint64_t *touched) {
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND:
        count_kind(t, PyUnicode_1BYTE_KIND, data, len, counts, touched);
        break;
    case PyUnicode_2BYTE_KIND:
        count_kind(t, PyUnicode_2BYTE_KIND, data, len, counts, touched);
        break;
    default:
        count_kind(t, PyUnicode_4BYTE_KIND, data, len, counts, touched);
    }
}

/* Count the text's terms into the scratch, then take the touched ids in ascending order with their
 * weights into raw allocations (*ids_out, *weights_out), leaving the scratch clean. Touches no Python
 * object and allocates only with the raw allocator, so it may run without the GIL. Returns the number
 * of ids, or -1 when out of memory (the scratch is left clean then too). */
static Py_ssize_t count_and_weigh(const Table *t, PyObject *text, int32_t *counts, uint64_t *touched,
                                  int32_t **ids_out, double **weights_out, double *sum_sq_out) {
    size_t n_words = (size_t)(t->n_features / 64 + 1);
    count_terms(t, text, counts, touched);
    Py_ssize_t n_nonzero = 0;
    for (size_t w = 0; w < n_words; w++) n_nonzero += __builtin_popcountll(touched[w]);
    int32_t *ids = PyMem_RawMalloc((n_nonzero ? n_nonzero : 1) * sizeof(int32_t));
    double *weights = PyMem_RawMalloc((n_nonzero ? n_nonzero : 1) * sizeof(double));
    if (!ids || !weights) {
        PyMem_RawFree(ids);
        PyMem_RawFree(weights);
        memset(counts, 0, (size_t)(t->n_features ? t->n_features : 1) * sizeof(int32_t));
        memset(touched, 0, n_words * sizeof(uint64_t));
        return -1;
    }
    Py_ssize_t j = 0;
    double sum_sq = 0.0;
    for (size_t w = 0; w < n_words; w++) {
        uint64_t bits = touched[w];
        if (!bits) continue;
        touched[w] = 0;
        while (bits) {
            int32_t id = (int32_t)(w * 64 + (size_t)__builtin_ctzll(bits));
            bits &= bits - 1;
            double tf = (double)counts[id];
            counts[id] = 0;
            double v = (t->sublinear_tf ? log(tf) + 1.0 : tf) * t->idf[id];
            ids[j] = id;
            weights[j] = v;
            sum_sq += v * v;
            j++;
        }
    }
    *ids_out = ids;
    *weights_out = weights;
    *sum_sq_out = sum_sq;
    return n_nonzero;
}

static PyObject *Table_transform(Table *t, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text must be str");
        return NULL;
    }
    if (t->ngram_hi > 64) {
        PyErr_SetString(PyExc_ValueError, "n-grams longer than 64 tokens are not supported");
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) return NULL;
#endif
    int32_t *counts = t->counts;
    uint64_t *touched = t->touched;
    size_t n_words = (size_t)(t->n_features / 64 + 1);
    int own_scratch = 0;
    if (t->busy) {
        counts = PyMem_Calloc(t->n_features ? t->n_features : 1, sizeof(int32_t));
        touched = PyMem_Calloc(n_words, sizeof(uint64_t));
        if (!counts || !touched) {
            PyMem_Free(counts);
            PyMem_Free(touched);
            return PyErr_NoMemory();
        }
        own_scratch = 1;
    } else {
        t->busy = 1;
    }
    Py_ssize_t n_nonzero = 0;
    double sum_sq = 0.0;
    int32_t *ids = NULL;
    double *weights = NULL;
    if (PyUnicode_GET_LENGTH(text) >= RELEASE_MIN_CHARS) {
        Py_BEGIN_ALLOW_THREADS
        n_nonzero = count_and_weigh(t, text, counts, touched, &ids, &weights, &sum_sq);
        Py_END_ALLOW_THREADS
    } else {
        n_nonzero = count_and_weigh(t, text, counts, touched, &ids, &weights, &sum_sq);
    }
    if (own_scratch) {
        PyMem_Free(counts);
        PyMem_Free(touched);
    } else {
        t->busy = 0;
    }
    if (n_nonzero < 0) return PyErr_NoMemory();
    double norm = sqrt(sum_sq);
    PyObject *id_list = PyList_New(n_nonzero);
    PyObject *weight_list = PyList_New(n_nonzero);
    if (!id_list || !weight_list) goto fail;
    for (Py_ssize_t k = 0; k < n_nonzero; k++) {
        PyObject *id = PyLong_FromLong(ids[k]);
        if (!id) goto fail;
        PyList_SET_ITEM(id_list, k, id);
        PyObject *weight = PyFloat_FromDouble(weights[k] / norm);
        if (!weight) goto fail;
        PyList_SET_ITEM(weight_list, k, weight);
    }
    PyMem_RawFree(ids);
    PyMem_RawFree(weights);
    PyObject *out = PyTuple_Pack(2, id_list, weight_list);
    Py_DECREF(id_list);
    Py_DECREF(weight_list);
    return out;
fail:
    PyMem_RawFree(ids);
    PyMem_RawFree(weights);
    Py_XDECREF(id_list);
    Py_XDECREF(weight_list);
    return NULL;
}

static PyObject *Table_tokens(Table *t, PyObject *text) {
    /* the tokens the scan finds, as strings: for tests against the regex */
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text must be str");
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) return NULL;
#endif
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    Py_ssize_t i = 0;
    while (i < len) {
        if (!is_word(PyUnicode_READ(kind, data, i))) {
            i++;
            continue;
        }
        Py_ssize_t start = i;
        while (i < len && is_word(PyUnicode_READ(kind, data, i))) i++;
        if (i - start < 2) continue;
        PyObject *tok = PyUnicode_Substring(text, start, i);
        if (!tok || PyList_Append(out, tok) < 0) {
            Py_XDECREF(tok);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(tok);
    }
    return out;
}

static PyMethodDef Table_methods[] = {
    {"transform", (PyCFunction)Table_transform, METH_O,
     "transform(lowercased_text) -> (ids, weights): sorted vocabulary ids and L2-normalised TF-IDF"},
    {"tokens", (PyCFunction)Table_tokens, METH_O, "tokens(text) -> the tokens the scan finds"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "textvec._fastvec.Table",
    .tp_basicsize = sizeof(Table),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Table(vocabulary, idf, ngram_lo, ngram_hi, sublinear_tf): the default word analyzer's "
              "TF-IDF transform for one fitted vocabulary",
    .tp_new = Table_new,
    .tp_dealloc = (destructor)Table_dealloc,
    .tp_methods = Table_methods,
};

static struct PyModuleDef fastvec_module = {
    PyModuleDef_HEAD_INIT, "textvec._fastvec",
    "The default word analyzer's TF-IDF transform, compiled (textvec.vectorizer falls back to Python).", -1,
    NULL,
};

PyMODINIT_FUNC PyInit__fastvec(void) {
    if (PyType_Ready(&TableType) < 0) return NULL;
    PyObject *m = PyModule_Create(&fastvec_module);
    if (!m) return NULL;
    Py_INCREF(&TableType);
    if (PyModule_AddObject(m, "Table", (PyObject *)&TableType) < 0) {
        Py_DECREF(&TableType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
