/* Declares a parameter whose default is outside its own range. */
#include "dup_common.h"
static const mf_param_spec params[] = {
    {"units", MF_PT_INT, "0", 1, 100, 0, "must be at least 1, default 0"}, {0}};
static mf_status init(const mf_registrar *reg) {
  return reg->add_model(reg, &(mf_component_desc){"bad_default_model", "broken schema", params}, &vt);
}
MF_PLUGIN_ENTRY(init)
