// Entry frames (entry_frame.h) and the Entry that holds one (storage/types.h).
#include "storage/entry_frame.h"

#include <cstring>
#include <iomanip>

#include "storage/codec.h"
#include "storage/little_endian.h"

namespace keyval {
namespace {

using little_endian::load_u32;
using little_endian::load_u64;
using little_endian::store_u32;
using little_endian::store_u64;

std::shared_ptr<const std::vector<uint8_t>> make_frame(EntryType type, uint64_t index, uint64_t term, ByteView payload) {
  return std::make_shared<const std::vector<uint8_t>>(
      entry_frame::build(type, index, term, payload.data(), payload.size()));
}

}  // namespace

namespace entry_frame {

void write_header(EntryType type, uint64_t index, uint64_t term, const uint8_t* payload, size_t bytes, uint8_t* out) {
  KV_ASSERT(bytes <= payload_bytes_max);
  std::memset(out, 0, header_bytes);
  store_u32(out + 4, static_cast<uint32_t>(bytes));
  out[8] = static_cast<uint8_t>(type);
  store_u32(out + 12, entry_checksum(type, index, term, payload, bytes));
  store_u64(out + 16, index);
  store_u64(out + 24, term);
}

std::vector<uint8_t> build(EntryType type, uint64_t index, uint64_t term, const uint8_t* payload, size_t bytes) {
  std::vector<uint8_t> frame(header_bytes + bytes);
  write_header(type, index, term, payload, bytes, frame.data());
  if (bytes > 0) std::memcpy(frame.data() + header_bytes, payload, bytes);
  return frame;
}

Header read_header(const uint8_t* frame) {
  Header header;
  header.payload_bytes = load_u32(frame + 4);
  header.type = static_cast<EntryType>(frame[8]);
  header.checksum = load_u32(frame + 12);
  header.index = load_u64(frame + 16);
  header.term = load_u64(frame + 24);
  return header;
}

bool looks_like_frame(const uint8_t* data, size_t bytes) {
  return bytes >= header_bytes && load_u32(data) == 0 && load_u32(data + 4) == bytes - header_bytes;
}

Result<Header> check(const uint8_t* data, size_t bytes, uint64_t expected_index, const std::string& where) {
  if (bytes < header_bytes) {
    return Status::corruption(where + ": entry frame of " + std::to_string(bytes) + " bytes, shorter than its " +
                              std::to_string(header_bytes) + "-byte header");
  }
  Header header = read_header(data);
  if (header.payload_bytes != bytes - header_bytes) {
    return Status::corruption(where + ": entry frame says its payload is " + std::to_string(header.payload_bytes) +
                              " bytes, but " + std::to_string(bytes - header_bytes) + " follow its header");
  }
  if (load_u32(data) != 0 || data[9] != 0 || data[10] != 0 || data[11] != 0) {
    return Status::corruption(where + ": entry frame has nonzero reserved bytes");
  }
  const uint8_t type = data[8];
  if (type != static_cast<uint8_t>(EntryType::log) && type != static_cast<uint8_t>(EntryType::configuration)) {
    return Status::corruption(where + ": entry frame has type " + std::to_string(type) +
                              ", expected log (1) or configuration (5)");
  }
  const uint32_t computed = entry_checksum(header.type, header.index, header.term, data + header_bytes,
                                           header.payload_bytes);
  if (computed != header.checksum) {
    return Status::corruption(where + " (index " + std::to_string(header.index) + ", term " +
                              std::to_string(header.term) + ") fails its checksum (stored " +
                              std::to_string(header.checksum) + ", computed " + std::to_string(computed) + ")");
  }
  if (expected_index != 0 && header.index != expected_index) {
    return Status::corruption(where + ": stored entry has index " + std::to_string(header.index) + ", expected " +
                              std::to_string(expected_index));
  }
  return header;
}

Result<Entry> decode(const uint8_t* data, size_t bytes, uint64_t expected_index, const std::string& where) {
  KV_ASSIGN_OR_RETURN(Header header, check(data, bytes, expected_index, where));
  (void)header;
  return Entry::from_frame(std::make_shared<const std::vector<uint8_t>>(data, data + bytes));
}

}  // namespace entry_frame

std::ostream& operator<<(std::ostream& out, ByteView bytes) {
  out << bytes.size() << " bytes";
  if (bytes.empty()) return out;
  out << " [";
  const std::ios_base::fmtflags flags = out.flags();
  for (size_t i = 0; i < bytes.size() && i < 32; ++i) {
    out << (i == 0 ? "" : " ") << std::hex << std::setw(2) << std::setfill('0') << unsigned(bytes[i]);
  }
  out.flags(flags);
  return out << (bytes.size() > 32 ? " ...]" : "]");
}

Entry::Entry(uint64_t index_in, uint64_t term_in, ByteView payload_in, EntryType type_in)
    : index(index_in), term(term_in), type(type_in), frame_(make_frame(type_in, index_in, term_in, payload_in)) {}

Entry Entry::from_frame(std::shared_ptr<const std::vector<uint8_t>> frame) {
  KV_ASSERT(frame && frame->size() >= entry_frame::header_bytes);
  const entry_frame::Header header = entry_frame::read_header(frame->data());
  Entry entry;
  entry.index = header.index;
  entry.term = header.term;
  entry.type = header.type;
  entry.frame_ = std::move(frame);
  return entry;
}

ByteView Entry::payload() const {
  if (!frame_) return ByteView();
  return ByteView(frame_->data() + entry_frame::header_bytes, frame_->size() - entry_frame::header_bytes);
}

void Entry::set_payload(ByteView payload_in) { frame_ = make_frame(type, index, term, payload_in); }

bool Entry::frame_matches() const {
  if (!frame_) return false;
  const entry_frame::Header header = entry_frame::read_header(frame_->data());
  return header.index == index && header.term == term && header.type == type;
}

const std::shared_ptr<const std::vector<uint8_t>>& Entry::shared_frame() const {
  if (!frame_matches()) frame_ = make_frame(type, index, term, payload());
  return frame_;
}

const std::vector<uint8_t>& Entry::frame() const { return *shared_frame(); }

uint32_t Entry::checksum() const { return entry_frame::read_header(frame().data()).checksum; }

}  // namespace keyval
