/* Sending a request's images to a model, for the handlers: the model that
 * is to run them (or the refusal), and the work's way out and back. */
#ifndef HTTP_SUBMIT_H
#define HTTP_SUBMIT_H

#include "http/request.h"
#include "serve/inference.h"

/* A begin for the routes that run a model ({name} in the path): counts
 * the request as an inference request and refuses an unknown model (404)
 * before its body is read. */
void submit_begin(request_t *r);

/* The model that is to run the request's images, or NULL with the refusal
 * answered: new work after the drain's grace (503), an unknown model
 * (404), a model not loaded yet or after a failed load (503). */
served_model_t *submit_model(request_t *r);

/* A request's images out on a model; the handler's state holds it. */
typedef struct work {
    infer_t inf;
    request_t *r;
    void (*answer)(request_t *r); /* builds the answer once all are back */
} work_t;

/* Sends w->inf (infer_prepare'd, every job's input set) to its model and
 * suspends the request; when all images are back, answer(r) runs and the
 * request resumes. If the client leaves meanwhile, what is still queued
 * is dropped. On a refusal (queue full) the request is answered at once. */
void work_submit(request_t *r, work_t *w, void (*answer)(request_t *r));

/* Lets go of the work's jobs and model (after it is back, or refused). */
void work_release(work_t *w);

#endif
