/* exo_model: a Hugging Face model directory opened for shards to load from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/struct_io.h"
#include "model_internal.h"

static void add_eos(exo_model *m, int32_t id) {
    if (id < 0 || exo_model_is_eos(m, id) || m->n_eos == sizeof m->eos / sizeof m->eos[0]) return;
    m->eos[m->n_eos++] = id;
}

bool exo_model_is_eos(const exo_model *m, int32_t token) {
    for (uint32_t i = 0; i < m->n_eos; i++)
        if (m->eos[i] == token) return true;
    return false;
}

exo_status exo_model_open(exo_runtime *rt, const char *dir, exo_model **out) {
    exo_error_clear();
    if (!rt || !dir || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_model_open: NULL argument");
    *out = NULL;
    exo_model *m = calloc(1, sizeof *m);
    if (!m) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory opening %s", dir);
    m->rt = rt;
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    exo_status st = exo_model_config_load(dir, &m->cfg);
    if (st == EXO_OK) st = exo_weights_open(dir, &m->weights);
    if (st != EXO_OK) {
        exo_error_keep(&rt->error, st);
        exo_weights_close(m->weights);
        free(m);
        return st;
    }
    /* A model without a usable tokenizer still runs on token ids and hidden states; text calls
     * report why the tokenizer is missing. */
    m->tokenizer_status = exo_tokenizer_load(dir, &m->tokenizer);
    if (m->tokenizer_status != EXO_OK) {
        m->tokenizer = NULL;
        snprintf(m->tokenizer_error, sizeof m->tokenizer_error, "%s", exo_error_message());
        exo_logf(&rt->logger, EXO_LOG_INFO, "model", "no tokenizer: %s", m->tokenizer_error);
        exo_error_clear();
    }
    for (uint32_t i = 0; i < m->cfg.n_eos; i++) add_eos(m, m->cfg.eos_token_ids[i]);
    if (m->tokenizer) {
        const int32_t *eos = NULL;
        size_t n = exo_tokenizer_eos(m->tokenizer, &eos);
        for (size_t i = 0; i < n; i++) add_eos(m, eos[i]);
    }
    exo_logf(&rt->logger, EXO_LOG_INFO, "model", "opened %s: %s, %u layers, hidden %u, %u heads (%u kv), vocab %u",
             dir, m->cfg.model_type, m->cfg.n_layers, m->cfg.hidden_size, m->cfg.n_heads, m->cfg.n_kv_heads,
             m->cfg.vocab_size);
    *out = m;
    return EXO_OK;
}

void exo_model_destroy(exo_model *m) {
    if (!m) return;
    exo_tokenizer_free(m->tokenizer);
    exo_weights_close(m->weights);
    free(m);
}

const char *exo_model_last_error(const exo_model *m) { return m ? m->error.message : ""; }

exo_status exo_model_get_info(const exo_model *m, exo_model_info *out) {
    exo_error_clear();
    if (!m) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_model_get_info: model is NULL");
    if (!out || out->hdr.size < sizeof(exo_struct_header))
        return exo_error_keep((exo_error_slot *)&m->error,
                              exo_errorf(EXO_ERR_INVALID_ARG, "exo_model_get_info: NULL argument or uninitialised header"));
    const exo_model_config *c = &m->cfg;
    exo_model_info info;
    memset(&info, 0, sizeof info);
    EXO_STRUCT_INIT(&info);
    info.architecture = c->model_type;
    info.path = m->dir;
    info.n_layers = c->n_layers;
    info.hidden_size = c->hidden_size;
    info.intermediate_size = c->intermediate_size;
    info.vocab_size = c->vocab_size;
    info.n_heads = c->n_heads;
    info.n_kv_heads = c->n_kv_heads;
    info.head_dim = c->head_dim;
    info.max_position_embeddings = c->max_position_embeddings;
    info.dtype = c->torch_dtype;
    info.bos_token_id = c->bos_token_id;
    info.eos_token_ids = m->eos;
    info.n_eos = m->n_eos;
    info.tie_word_embeddings = c->tie_word_embeddings;
    info.adds_bos = m->tokenizer && exo_tokenizer_adds_bos(m->tokenizer);
    info.has_tokenizer = m->tokenizer != NULL;
    info.quant_bits = c->quant.bits;
    info.quant_group = c->quant.bits ? c->quant.group : 0;
    info.n_experts = c->n_experts;
    info.n_experts_per_tok = c->n_experts ? c->n_experts_per_tok : 0;
    info.moe_intermediate_size = c->n_experts ? c->moe_intermediate_size : 0;
    bool router_seen = false;
    for (uint32_t l = 0; l < c->n_layers; l++) {
        if (!exo_layer_is_moe(c, l)) continue;
        info.n_moe_layers++;
        if (router_seen) continue;
        /* The router as the builder names it; overrides are per layer, the first sparse layer's
         * stands for all (mlx-lm writes the same one for every layer). */
        char module[96];
        snprintf(module, sizeof module, "model.layers.%u.%s.gate", l,
                 c->arch == EXO_ARCH_MIXTRAL ? "block_sparse_moe" : "mlp");
        exo_quant_for(c, module, &info.router_quant_bits, &info.router_quant_group);
        if (!info.router_quant_bits) info.router_quant_group = 0;
        router_seen = true;
    }
    exo_struct_copy_out(out, &info, sizeof info);
    return EXO_OK;
}
