// Lets Boost.Test print the project's values it compares (found by argument-dependent lookup).
#pragma once

#include <ostream>

#include "storage/status.h"

namespace keyval {

inline std::ostream& operator<<(std::ostream& out, Code code) { return out << code_name(code); }

}  // namespace keyval
