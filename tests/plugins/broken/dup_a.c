/* Registers model "dup_model" (so does dup_b). */
#include "dup_common.h"
static mf_status init(const mf_registrar *reg) {
  return reg->add_model(reg, &(mf_component_desc){"dup_model", "first of two", 0}, &vt);
}
MF_PLUGIN_ENTRY(init)
