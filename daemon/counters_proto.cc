// SPDX-License-Identifier: Apache-2.0
#include "counters_proto.h"

#include "counters.h"

namespace procscope {
namespace {

template <typename Msg>
void Set(const ps_counters& c, const ps_io& io, Msg* out) {
#define PS_SET_FIELD(f, ...) counter_meta::f::Set(*out, c.f);
#define PS_SET_ARRAY(f, n) counter_meta::f::Set(*out, c.f);
#define PS_SET_IO(f) counter_meta::f::Set(*out, io.f);
  PS_SCALAR_FIELDS(PS_SET_FIELD)
  PS_COUNTER_ARRAYS(PS_SET_ARRAY)
  PS_IO_FIELDS(PS_SET_IO)
#undef PS_SET_IO
#undef PS_SET_ARRAY
#undef PS_SET_FIELD
}

}  // namespace

void SetCounterFields(const ps_counters& c, const ps_io& io, v1::Process* out) { Set(c, io, out); }
void SetCounterFields(const ps_counters& c, const ps_io& io, v1::ExitEvent* out) {
  Set(c, io, out);
}

void AddCountersFromProto(const v1::ExitEvent& e, ps_counters& c, ps_io& io) {
#define PS_ADD_FIELD(f, ...) c.f += counter_meta::f::Get(e);
#define PS_ADD_ARRAY(f, n) counter_meta::f::AddTo(e, c.f);
#define PS_ADD_IO(f) io.f += counter_meta::f::Get(e);
  PS_SCALAR_FIELDS(PS_ADD_FIELD)
  PS_COUNTER_ARRAYS(PS_ADD_ARRAY)
  PS_IO_FIELDS(PS_ADD_IO)
#undef PS_ADD_IO
#undef PS_ADD_ARRAY
#undef PS_ADD_FIELD
}

}  // namespace procscope
