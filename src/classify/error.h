/* The error model of everything below HTTP: decoding, preprocessing,
 * request bodies, scheduling, models and the engine.
 *
 * A function that can fail returns an ic_err_t: IC_OK (0) or one code of
 * the table below, and, where the caller needs words, writes the details
 * into a message buffer it was given (the table's text is the fallback).
 * Nothing here knows HTTP: src/http/status.c maps each code to a status,
 * in one place. */
#ifndef CLASSIFY_ERROR_H
#define CLASSIFY_ERROR_H

/* X(code, text) */
#define IC_ERRORS(X)                                                          \
    X(IC_OK, "ok")                                                            \
    X(IC_ENOMEM, "out of memory")                                             \
    X(IC_ESYSTEM, "a system resource (thread, lock, timer) is unavailable")   \
    X(IC_ECONFIG, "invalid configuration")                                    \
    /* images */                                                              \
    X(IC_EIMAGE_FORMAT, "not a JPEG or PNG image")                            \
    X(IC_EIMAGE_CORRUPT, "the image is damaged or truncated")                 \
    X(IC_EIMAGE_SMALL, "the image is smaller than the smallest side allowed") \
    X(IC_EIMAGE_LARGE, "the image has more pixels than allowed")              \
    X(IC_EPREPROCESS, "the image cannot be preprocessed for this model")      \
    /* request bodies */                                                      \
    X(IC_EBODY_EMPTY, "empty body")                                           \
    X(IC_EBODY_MALFORMED, "malformed body")                                   \
    X(IC_EBODY_TOO_LARGE, "the body is too large")                            \
    X(IC_EBODY_TYPE, "unsupported content type")                              \
    X(IC_ETOO_MANY_IMAGES, "too many images in one request")                  \
    X(IC_EPARAM, "invalid parameter")                                         \
    /* models and scheduling */                                               \
    X(IC_ENO_MODEL, "no such model")                                          \
    X(IC_ENOT_LOADED, "the model is not loaded")                              \
    X(IC_EMODEL, "the model cannot be loaded")                                \
    X(IC_EQUEUE_FULL, "the model's queue is full")                            \
    X(IC_EDEADLINE, "deadline passed while waiting in the queue")             \
    X(IC_ECANCELLED, "client disconnected")                                   \
    X(IC_ESHUTDOWN, "server shutting down")                                   \
    X(IC_EINFER, "inference failed")

typedef enum ic_err {
#define IC_ERROR_ENUM(code, text) code,
    IC_ERRORS(IC_ERROR_ENUM)
#undef IC_ERROR_ENUM
    IC_ERROR_COUNT
} ic_err_t;

/* The table's text for a code ("unknown error" outside the table). */
const char *ic_strerror(ic_err_t code);
/* The code's name, "IC_EIMAGE_FORMAT" (for logs and tests). */
const char *ic_errname(ic_err_t code);

#endif
