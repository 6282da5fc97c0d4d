/* RoPE inverse frequencies against the formulas of transformers' modeling_rope_utils.py,
 * recomputed here in double (written from the formulas, not from rope.c), plus spot values
 * computed separately with Python's math module from the same formulas. */
#include <math.h>

#include "model/config.h"
#include "model_test_util.h"

#define HF EXO_TEST_DATA "/hf-tiny"

static void assert_close(float got, double want, double rel, const char *what, uint32_t i) {
    ck_assert_msg(fabs((double)got - want) <= rel * fabs(want) + 1e-30,
                  "%s[%u] = %.9g, want %.9g", what, i, (double)got, want);
}

static exo_model_config parse(const char *json) {
    exo_model_config c;
    exo_status st = exo_model_config_parse(json, "test/config.json", &c);
    ck_assert_msg(st == EXO_OK, "%s", exo_error_message());
    return c;
}

/* theta^(-i/dim) for even i: the unscaled frequency, via exp/log. */
static double plain(double theta, uint32_t even_i, uint32_t dim) {
    return exp(-log(theta) * even_i / dim);
}

START_TEST(default_rope_is_theta_power) {
    exo_model_config c;
    ck_assert_int_eq(exo_model_config_load(HF "/llama", &c), EXO_OK);
    uint32_t n = exo_rope_n_rot(&c);
    ck_assert_uint_eq(n, 16);
    float inv[8], att = 0;
    exo_rope_inv_freq(&c, inv, n, &att);
    ck_assert_float_eq(att, 1.0f);
    for (uint32_t i = 0; i < n / 2; i++) assert_close(inv[i], plain(1e4, 2 * i, n), 1e-6, "inv", i);
    assert_close(inv[1], 0.31622776601683794, 1e-6, "inv", 1); /* 10000^(-1/8) */
}
END_TEST

START_TEST(llama3_rope_matches_formula) {
    exo_model_config c;
    ck_assert_int_eq(exo_model_config_load(HF "/llama3", &c), EXO_OK);
    const uint32_t n = exo_rope_n_rot(&c);
    ck_assert_uint_eq(n, 16);
    float inv[8], att = 0;
    exo_rope_inv_freq(&c, inv, n, &att);
    ck_assert_float_eq(att, 1.0f);
    /* Wavelength bands: short waves kept, long waves / factor, blended between. */
    const double factor = 32, low = 1, high = 4, ctx = 64;
    for (uint32_t i = 0; i < n / 2; i++) {
        double f = plain(500000.0, 2 * i, n);
        double wave = 2 * M_PI / f, want;
        if (wave < ctx / high) want = f;
        else if (wave > ctx / low) want = f / factor;
        else {
            double s = (ctx / wave - low) / (high - low);
            want = f * ((1 - s) / factor + s);
        }
        assert_close(inv[i], want, 1e-6, "llama3", i);
    }
    /* Python reference values (float64). */
    static const double ref[8] = {1.0, 0.0671330375110499, 0.001175188466589498,
                                  0.00022789577303803464, 4.419417382415922e-05,
                                  8.570255489881478e-06, 1.661967467795309e-06,
                                  3.2229329303788936e-07};
    for (uint32_t i = 0; i < 8; i++) assert_close(inv[i], ref[i], 1e-6, "llama3 ref", i);
}
END_TEST

#define YARN_CONFIG(extra)                                                                     \
    "{\"model_type\":\"llama\",\"hidden_size\":256,\"intermediate_size\":512,"               \
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100,"                   \
    "\"max_position_embeddings\":8192,\"rope_theta\":10000.0,"                                \
    "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4.0,"                                      \
    "\"original_max_position_embeddings\":2048" extra "}}"

/* The YaRN blend written out from the paper's definitions. */
static void yarn_reference(double *out, uint32_t dim, double theta, double factor, double orig,
                           bool truncate) {
    double lo = dim * log(orig / (32 * 2 * M_PI)) / (2 * log(theta));
    double hi = dim * log(orig / (1 * 2 * M_PI)) / (2 * log(theta));
    if (truncate) { lo = floor(lo); hi = ceil(hi); }
    lo = fmax(lo, 0);
    hi = fmin(hi, dim - 1);
    for (uint32_t i = 0; i < dim / 2; i++) {
        double ramp = fmin(fmax((i - lo) / (hi - lo), 0), 1);
        double f = plain(theta, 2 * i, dim);
        out[i] = f * (1 - ramp) + (f / factor) * ramp;
    }
}

START_TEST(yarn_rope_matches_formula) {
    exo_model_config c = parse(YARN_CONFIG(""));
    ck_assert_int_eq(c.rope_scaling, EXO_ROPE_SCALING_YARN);
    ck_assert(c.yarn_truncate);
    const uint32_t n = exo_rope_n_rot(&c);
    ck_assert_uint_eq(n, 64);
    float inv[32], att = 0;
    exo_rope_inv_freq(&c, inv, n, &att);
    assert_close(att, 0.1 * log(4.0) + 1.0, 1e-6, "attention", 0);
    assert_close(att, 1.138629436111989, 1e-6, "attention", 0);
    double want[32];
    yarn_reference(want, n, 1e4, 4.0, 2048, true);
    for (uint32_t i = 0; i < 32; i++) assert_close(inv[i], want[i], 1e-6, "yarn", i);
    static const struct { uint32_t i; double v; } ref[] = {
        {0, 1.0}, {5, 0.23713737056616555}, {10, 0.049745578766838564},
        {15, 0.00794983930712751}, {20, 0.0009730085108210396}, {31, 3.33380358040831e-05}};
    for (size_t k = 0; k < sizeof ref / sizeof ref[0]; k++)
        assert_close(inv[ref[k].i], ref[k].v, 1e-6, "yarn ref", ref[k].i);
}
END_TEST

START_TEST(yarn_without_truncation_and_given_attention_factor) {
    exo_model_config c = parse(YARN_CONFIG(",\"truncate\":false,\"attention_factor\":1.5"));
    ck_assert(!c.yarn_truncate);
    float inv[32], att = 0;
    exo_rope_inv_freq(&c, inv, 64, &att);
    ck_assert_float_eq(att, 1.5f);
    double want[32];
    yarn_reference(want, 64, 1e4, 4.0, 2048, false);
    for (uint32_t i = 0; i < 32; i++) assert_close(inv[i], want[i], 1e-6, "yarn", i);
    assert_close(inv[10], 0.04945308694591044, 1e-6, "yarn ref", 10);
    assert_close(inv[15], 0.007574179088510251, 1e-6, "yarn ref", 15);
}
END_TEST

START_TEST(linear_rope_divides_by_factor) {
    exo_model_config c = parse(
        "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,"
        "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"vocab_size\":10,"
        "\"rope_theta\":10000,\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.5}}");
    float inv[8];
    exo_rope_inv_freq(&c, inv, 16, NULL);
    for (uint32_t i = 0; i < 8; i++) assert_close(inv[i], plain(1e4, 2 * i, 16) / 2.5, 1e-6, "linear", i);
}
END_TEST

START_TEST(dynamic_rope_at_init_is_default) {
    exo_model_config c = parse(
        "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,"
        "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"vocab_size\":10,"
        "\"rope_parameters\":{\"rope_type\":\"dynamic\",\"factor\":2.0,\"rope_theta\":5000}}");
    ck_assert_int_eq(c.rope_scaling, EXO_ROPE_SCALING_DYNAMIC);
    float inv[8];
    exo_rope_inv_freq(&c, inv, 16, NULL);
    for (uint32_t i = 0; i < 8; i++) assert_close(inv[i], plain(5000, 2 * i, 16), 1e-6, "dynamic", i);
}
END_TEST

START_TEST(partial_rotary_factor_shrinks_rotated_dims) {
    exo_model_config c = parse(
        "{\"model_type\":\"phi3\",\"hidden_size\":128,\"intermediate_size\":128,"
        "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"vocab_size\":10,"
        "\"partial_rotary_factor\":0.4,\"rope_theta\":10000}");
    ck_assert_uint_eq(c.head_dim, 32);
    uint32_t n = exo_rope_n_rot(&c);
    ck_assert_uint_eq(n, 12); /* int(32 * 0.4) = 12 */
    float inv[6];
    exo_rope_inv_freq(&c, inv, n, NULL);
    for (uint32_t i = 0; i < 6; i++) assert_close(inv[i], plain(1e4, 2 * i, 12), 1e-6, "partial", i);
}
END_TEST

static Suite *rope_suite(void) {
    Suite *s = suite_create("rope");
    TCase *tc = tcase_create("inv_freq");
    tcase_add_test(tc, default_rope_is_theta_power);
    tcase_add_test(tc, llama3_rope_matches_formula);
    tcase_add_test(tc, yarn_rope_matches_formula);
    tcase_add_test(tc, yarn_without_truncation_and_given_attention_factor);
    tcase_add_test(tc, linear_rope_divides_by_factor);
    tcase_add_test(tc, dynamic_rope_at_init_is_default);
    tcase_add_test(tc, partial_rotary_factor_shrinks_rotated_dims);
    suite_add_tcase(s, tc);
    return s;
}

MTU_MAIN(rope_suite)
