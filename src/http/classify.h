/* A classification request, as v1's classify and TorchServe's predictions
 * both take it: the images of the body (raw, form or JSON), a top_k, each
 * image ranked by the model. The handlers differ only in their answer. */
#ifndef HTTP_CLASSIFY_H
#define HTTP_CLASSIFY_H

#include "http/request.h"
#include "http/submit.h"

typedef struct classify {
    work_t work;
    int top_k;  /* 0 until given; then 1..the model's classes */
} classify_t;

/* The route's end: reads the images and top_k from the whole body and
 * sends the images to the model; answer(r) builds the answer once they
 * are back (classify_of(r) holds them). any_type: a raw body may have any
 * Content-Type (TorchServe's clients send what curl -T sets). */
void classify_run(request_t *r, int any_type, void (*answer)(request_t *r));

classify_t *classify_of(request_t *r);

/* The top k to answer with: the request's, else the model's default, at
 * most the model's classes. */
int classify_top_k(const classify_t *c);

#endif
