// Out-of-line parts of asyncio/exceptions.hpp.
#include "asyncio/exceptions.hpp"

#include <cerrno>

namespace asyncio {

TimeoutError::TimeoutError() : OSError(ETIMEDOUT, "timed out") {}
TimeoutError::TimeoutError(const std::string& what) : OSError(ETIMEDOUT, what) {}

namespace {
std::string incomplete_message(std::size_t got, const std::optional<std::size_t>& expected) {
    std::string m = std::to_string(got) + " bytes read on a total of ";
    m += expected ? std::to_string(*expected) : std::string("undefined");
    m += " expected bytes";
    return m;
}

std::string group_message(const std::string& message, std::size_t n) {
    return message + " (" + std::to_string(n) + " sub-exception" + (n == 1 ? "" : "s") + ")";
}
}  // namespace

IncompleteReadError::IncompleteReadError(std::string partial_bytes,
                                         std::optional<std::size_t> expected_bytes)
    : std::runtime_error(incomplete_message(partial_bytes.size(), expected_bytes)),
      partial(std::move(partial_bytes)),
      expected(expected_bytes) {}

ExceptionGroup::ExceptionGroup(std::string message, std::vector<std::exception_ptr> excs)
    : std::runtime_error(group_message(message, excs.size())),
      message_(std::move(message)),
      excs_(std::move(excs)) {}

}  // namespace asyncio
