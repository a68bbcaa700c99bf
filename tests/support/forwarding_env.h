// The tests name the forwarding Env and File (storage/forwarding_env.h) from keyval::testing.
#pragma once

#include "storage/forwarding_env.h"

namespace keyval::testing {
using keyval::ForwardingEnv;
using keyval::ForwardingFile;
}  // namespace keyval::testing
