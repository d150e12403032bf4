/* The plugin loader: broken plugins fail with errors naming the file and leave nothing
 * registered; parameters are validated against the schema with helpful messages. */
#include <stdlib.h>
#include <string.h>

#include "melforge/component.h"
#include "melforge/melforge.h"
#include "mftest.h"

#define PLUGIN(name) TEST_PLUGIN_DIR "/" name ".so"

#define EXPECT_ERROR_HAS(text)                                                                     \
  EXPECT(strstr(mf_error(), text) != NULL, "error message lacks '%s': %s", text, mf_error())

TEST(test_text_file_is_rejected_as_not_a_shared_object) {
  mf_plugins_unload_all();
  EXPECT(mf_plugins_load_file(PLUGIN("not_elf")) == MF_EFORMAT, "expected MF_EFORMAT");
  EXPECT_ERROR_HAS("not_elf.so");
  EXPECT_ERROR_HAS("not a loadable plugin");
  EXPECT_EQ_INT(mf_component_count(), 0);
}

TEST(test_missing_entry_symbol_is_named) {
  mf_plugins_unload_all();
  EXPECT(mf_plugins_load_file(PLUGIN("no_entry")) == MF_EFORMAT, "expected MF_EFORMAT");
  EXPECT_ERROR_HAS("no_entry.so");
  EXPECT_ERROR_HAS("melforge_plugin_init");
}

TEST(test_abi_mismatch_names_both_versions) {
  mf_plugins_unload_all();
  EXPECT(mf_plugins_load_file(PLUGIN("abi_mismatch")) != MF_OK, "an ABI 999 plugin loaded");
  EXPECT_ERROR_HAS("abi_mismatch.so");
  EXPECT_ERROR_HAS("version 999");
  char mine[64];
  snprintf(mine, sizeof mine, "version %d", MF_PLUGIN_ABI_VERSION);
  EXPECT_ERROR_HAS(mine);
}

TEST(test_failing_init_reports_its_message_and_rolls_back) {
  mf_plugins_unload_all();
  EXPECT(mf_plugins_load_file(PLUGIN("init_fails")) == MF_EIO, "expected the plugin's MF_EIO");
  EXPECT_ERROR_HAS("init_fails.so");
  EXPECT_ERROR_HAS("/nonexistent/table.bin");
  EXPECT(mf_component_find(MF_KIND_MODEL, "half_registered") == NULL,
         "a component of a failed plugin stayed registered");
}

TEST(test_duplicate_component_name_names_both_files) {
  mf_plugins_unload_all();
  EXPECT(mf_plugins_load_file(PLUGIN("dup_a")) == MF_OK, "%s", mf_error());
  EXPECT(mf_plugins_load_file(PLUGIN("dup_b")) != MF_OK, "a duplicate name was accepted");
  EXPECT_ERROR_HAS("dup_a.so");
  EXPECT_ERROR_HAS("dup_b.so");
  EXPECT_ERROR_HAS("'dup_model'");
  EXPECT_EQ_INT(mf_component_count(), 1);
}

TEST(test_invalid_default_in_schema_is_rejected_at_registration) {
  mf_plugins_unload_all();
  EXPECT(mf_plugins_load_file(PLUGIN("bad_default")) == MF_EINVAL, "expected MF_EINVAL");
  EXPECT_ERROR_HAS("bad_default.so");
  EXPECT_ERROR_HAS("units");
  EXPECT_ERROR_HAS("[1, 100]");
}

static int g_reports;
static void count_report(const char *file, const char *msg, void *user) {
  (void)file, (void)msg, (void)user;
  g_reports++;
}

TEST(test_scanning_a_directory_skips_broken_plugins_and_loads_the_rest) {
  mf_plugins_unload_all();
  g_reports = 0;
  int failures = mf_plugins_load_path(TEST_PLUGIN_DIR, count_report, NULL);
  /* not_elf, no_entry, abi_mismatch, init_fails, bad_default and the second dup_* fail. */
  EXPECT_EQ_INT(failures, 6);
  EXPECT_EQ_INT(g_reports, 6);
  EXPECT(mf_component_find(MF_KIND_MODEL, "toy_linear") != NULL, "%s", mf_error());
  EXPECT(mf_component_find(MF_KIND_MODEL, "dup_model") != NULL, "%s", mf_error());
}

TEST(test_unknown_component_gets_a_did_you_mean_hint) {
  mf_plugins_unload_all();
  mf_plugins_load_file(PLUGIN("toy"));
  EXPECT(mf_component_find(MF_KIND_MODEL, "toy_lnear") == NULL, "found a misspelt name");
  EXPECT_ERROR_HAS("did you mean 'toy_linear'");
  EXPECT(mf_component_find(MF_KIND_FEATURE, "toy_linear") == NULL, "found a model as a feature");
  EXPECT_ERROR_HAS("is a model, not a feature");
}

/* Defaults of toy_linear, loading the toy plugin if it is not registered yet (values point
 * into the plugin's schema, so the plugin must stay loaded while they live). */
static mf_values *toy_values(void) {
  mf_clear_error();
  if (!mf_component_find(MF_KIND_MODEL, "toy_linear")) {
    mf_plugins_unload_all();
    MF_CHECK(mf_plugins_load_file(PLUGIN("toy")) == MF_OK, "%s", mf_error());
  }
  mf_values *v = NULL;
  mf_component_values(mf_component_find(MF_KIND_MODEL, "toy_linear"), &v);
  return v;
}

TEST(test_defaults_come_from_the_schema) {
  mf_values *v = toy_values();
  const int64_t *f;
  const double *r;
  EXPECT_EQ_INT(mf_values_int(v, "units"), 8);
  EXPECT_NEAR(mf_values_float(v, "dropout"), 0.25, 0);
  EXPECT_EQ_INT(mf_values_bool(v, "use_bias"), 1);
  EXPECT(!strcmp(mf_values_string(v, "activation"), "relu"), "activation default");
  EXPECT_EQ_INT(mf_values_ints(v, "filters", &f), 2);
  EXPECT_EQ_INT(f[1], 64);
  EXPECT_EQ_INT(mf_values_floats(v, "rates", &r), 2);
  EXPECT_NEAR(r[0], 0.1, 0);
  mf_values_free(v);
}

TEST(test_unknown_parameter_is_named_with_a_suggestion) {
  mf_values *v = toy_values();
  EXPECT(mf_values_set_assignment(v, "dropuot=0.5") == MF_EINVAL, "accepted a misspelt name");
  EXPECT_ERROR_HAS("'dropuot'");
  EXPECT_ERROR_HAS("did you mean 'dropout'");
  EXPECT_ERROR_HAS("model 'toy_linear'");
  EXPECT(mf_values_set_int(v, "filtres", 3) == MF_EINVAL, "accepted a misspelt name");
  EXPECT_ERROR_HAS("did you mean 'filters'");
  mf_values_free(v);
}

TEST(test_out_of_range_value_names_parameter_and_range) {
  mf_values *v = toy_values();
  EXPECT(mf_values_set_assignment(v, "dropout=1.5") == MF_EINVAL, "accepted 1.5");
  EXPECT_ERROR_HAS("'dropout'");
  EXPECT_ERROR_HAS("[0, 0.95]");
  EXPECT_ERROR_HAS("1.5");
  EXPECT_NEAR(mf_values_float(v, "dropout"), 0.25, 0); /* unchanged after the error */
  EXPECT(mf_values_set_ints(v, "filters", (int64_t[]){32, 1000}, 2) == MF_EINVAL, "accepted 1000");
  EXPECT_ERROR_HAS("position 2");
  mf_values_free(v);
}

TEST(test_wrong_type_is_named) {
  mf_values *v = toy_values();
  EXPECT(mf_values_set_assignment(v, "units=many") == MF_EINVAL, "accepted 'many' as an int");
  EXPECT_ERROR_HAS("expects an int");
  EXPECT(mf_values_set_float(v, "units", 2.5) == MF_EINVAL, "accepted 2.5 as an int");
  EXPECT(mf_values_set_string(v, "use_bias", "yes please") == MF_EINVAL, "string into a bool");
  EXPECT_ERROR_HAS("expects a bool");
  EXPECT(mf_values_set_assignment(v, "activation=swish") == MF_EINVAL, "accepted a bad choice");
  EXPECT_ERROR_HAS("relu|gelu|tanh");
  mf_values_free(v);
}

TEST(test_text_values_parse_like_the_command_line) {
  mf_values *v = toy_values();
  const int64_t *f;
  EXPECT(mf_values_set_assignment(v, "filters={16, 32, 64}") == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(mf_values_ints(v, "filters", &f), 3);
  EXPECT_EQ_INT(f[2], 64);
  EXPECT(mf_values_set_assignment(v, "filters=8,8") == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(mf_values_ints(v, "filters", &f), 2);
  EXPECT(mf_values_set_assignment(v, "use_bias=off") == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(mf_values_bool(v, "use_bias"), 0);
  EXPECT(mf_values_set_assignment(v, "units=128.0") == MF_OK, "integral floats are ints");
  EXPECT_EQ_INT(mf_values_int(v, "units"), 128);
  EXPECT(mf_values_set_int(v, "dropout", 0) == MF_OK, "ints are accepted as floats");
  mf_values_free(v);
}

TEST(test_values_round_trip_through_json) {
  mf_values *v = toy_values();
  mf_values_set_assignment(v, "filters={1, 2, 3}");
  mf_values_set_assignment(v, "activation=tanh");
  mf_values_set_assignment(v, "dropout=0.125");
  char *json = mf_values_to_json(v);
  mf_values *w = toy_values();
  EXPECT(mf_values_from_json(w, json) == MF_OK, "%s", mf_error());
  char *again = mf_values_to_json(w);
  EXPECT(!strcmp(json, again), "%s vs %s", json, again);
  EXPECT(mf_values_from_json(w, "{\"units\": 3,}") == MF_EFORMAT, "bad JSON accepted");
  EXPECT_ERROR_HAS("line 1");
  free(json);
  free(again);
  mf_values_free(v);
  mf_values_free(w);
}

TEST(test_model_instance_builds_and_trains_one_step) {
  mf_values *v = toy_values();
  const mf_component *c = mf_component_find(MF_KIND_MODEL, "toy_linear");
  mf_model_io io = {MF_SHAPE(4, 3), 3};
  mf_rng init = mf_rng_stream(1, MF_RNG_INIT);
  mf_model *m = NULL;
  EXPECT(mf_model_new(c, v, &io, &init, &m) == MF_OK, "%s", mf_error());
  EXPECT_EQ_INT(mf_params_count_trainable(mf_model_params(m)), 3 * 12 + 3);
  mf_ctx *ctx = mf_ctx_new();
  mf_optim_config cfg = mf_optim_defaults(MF_OPTIM_SGD);
  cfg.lr = 0.5f;
  mf_optim *opt = mf_optim_new(mf_model_params(m), &cfg);
  float x[2 * 12];
  for (int i = 0; i < 24; i++) x[i] = (float)((i * 7) % 5) - 2.0f;
  int32_t y[2] = {0, 2};
  float losses[2];
  for (int step = 0; step < 2; step++) {
    mf_ctx_reset(ctx);
    mf_params_zero_grad(mf_model_params(m));
    mf_tensor *logits = mf_model_forward(m, ctx, mf_ctx_tensor_from(ctx, MF_SHAPE(2, 4, 3), x), 1);
    mf_tensor *loss = mf_cross_entropy(ctx, logits, y, 0);
    losses[step] = loss->data[0];
    mf_backward(ctx, loss);
    mf_optim_step(opt);
  }
  EXPECT(losses[1] < losses[0], "loss did not fall: %g -> %g", losses[0], losses[1]);
  mf_optim_free(opt);
  mf_ctx_free(ctx);
  mf_model_free(m);
  mf_values_free(v);
}
