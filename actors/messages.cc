// Registration of the persistence messages and the Status <-> caf::error bridge.
#include "actors/messages.h"

namespace keyval {
namespace {

const caf::atom_value error_category = caf::atom("keyval");

}  // namespace

void add_message_types(caf::actor_system_config& config) {
  config.add_message_type<Frame>("keyval.Frame");
  config.add_error_category(error_category, [](uint8_t code, caf::atom_value, const caf::message& context) {
    std::string text = context.match_elements<std::string>() ? context.get_as<std::string>(0) : "";
    return std::string("keyval ") + code_name(static_cast<Code>(code)) + ": " + text;
  });
}

caf::error to_error(const Status& status) {
  if (status.is_ok()) return caf::error{};
  return caf::error(static_cast<uint8_t>(status.code()), error_category, caf::make_message(status.message()));
}

Status to_status(const caf::error& error) {
  if (!error) return Status::ok();
  std::string message;
  if (error.context().match_elements<std::string>()) message = error.context().get_as<std::string>(0);
  if (error.category() != error_category) return Status::io_error("actor error: " + caf::to_string(error));
  return Status::from_code(static_cast<Code>(error.code()), std::move(message));
}

}  // namespace keyval
