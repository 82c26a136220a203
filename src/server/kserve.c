/* KServe v2 / Open Inference Protocol (being built). */
#include "server/server.h"

void kserve_server_metadata(request_t *r)
{
    api_answer_json(r, 200, json_pack("{s:s, s:s, s:[]}", "name", "imgclassd", "version",
                                      IMGCLASSD_VERSION, "extensions"));
}

void kserve_model_metadata(request_t *r, const model_slot_t *slot)
{
    api_answer_json(r, 200, json_pack("{s:s}", "name", slot->name));
}

void kserve_infer(request_t *r, served_model_t *m)
{
    (void)m;
    api_answer_error(r, 501, "not implemented yet");
}

void kserve_answer(request_t *r)
{
    api_answer_error(r, 500, "not implemented yet");
}

void kserve_free(request_t *r)
{
    (void)r;
}
