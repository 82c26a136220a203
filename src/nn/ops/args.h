/* What operators' prepare functions share: checks and reads of a call's
 * inputs. Each returns 0 (or a count) or a negative NN_E* code with err
 * naming the node. */
#ifndef NN_OPS_ARGS_H
#define NN_OPS_ARGS_H

#include <stdint.h>

#include "nn/op.h"

/* Input i (called `what` in messages) must be present and float32;
 * returns 0 or a negative code with err naming the node. */
int nn_need_float(const nn_call_t *call, int i, const char *what,
                  nn_error_t *err);

/* Marks the axes listed in axes[0..n) (negative ones count from the end)
 * in mask[0..rank), which must start zeroed; norm, if not NULL, receives
 * each axis normalised. An axis out of range or repeated is an error. */
int nn_axes_mask(const nn_call_t *call, const int64_t *axes, int n, int rank,
                 int *mask, int *norm, nn_error_t *err);

/* Reads a constant int64 (or float->int) 1-D input as a list; returns the
 * count or a negative code (with err set) when it is absent or not
 * constant. */
int nn_const_ints(const nn_call_t *call, int input, int64_t *vals, int max,
                  const char *what, nn_error_t *err);

#endif
