// Mirrors Python's asyncio.exceptions (plus the builtin exceptions asyncio raises).
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace asyncio {

/// The operation was cancelled (Python's asyncio.CancelledError).
///
/// Derives from std::exception only, never from std::runtime_error or
/// std::logic_error: Python's CancelledError is a BaseException, so
/// `catch (const std::runtime_error&)` (Python's `except Exception`) must not
/// swallow it, while `catch (const std::exception&)` (`except BaseException`)
/// still sees it. what() is the cancel(msg) message, "" when none.
class CancelledError : public std::exception {
public:
    CancelledError() = default;
    explicit CancelledError(std::string msg) : msg_(std::move(msg)) {}
    const char* what() const noexcept override { return msg_.c_str(); }

private:
    std::string msg_;
};

/// Python's RuntimeError.
class RuntimeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Python's ValueError.
class ValueError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// Python's OverflowError: a number out of its range, e.g. a port outside
/// 0-65535 given to create_connection()/create_server() (extension: Python
/// raises it there; DESIGN.md does not list it).
class OverflowError : public std::overflow_error {
public:
    using std::overflow_error::overflow_error;
};

/// The operation is not allowed in this state (asyncio.InvalidStateError).
class InvalidStateError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Python's OSError: a std::system_error carrying errno.
class OSError : public std::system_error {
public:
    /// what() is "<what>: <strerror(err)>"; with err 0 (Python's errno
    /// None: "Multiple exceptions: ...", "Connection lost") just "<what>".
    OSError(int err, const std::string& what) : std::system_error(err, std::generic_category(), what), bare_(what) {}
    /// The errno value (Python's OSError.errno); 0 for none.
    int errno_value() const noexcept { return code().value(); }
    const char* what() const noexcept override {
        return code().value() == 0 ? bare_.what() : std::system_error::what();
    }

private:
    std::runtime_error bare_;  // the message alone (a counted string: copies cannot throw)
};

/// Python's ConnectionError and its subclasses.
class ConnectionError : public OSError {
public:
    using OSError::OSError;
};
class ConnectionResetError : public ConnectionError {
public:
    using ConnectionError::ConnectionError;
};
class ConnectionAbortedError : public ConnectionError {
public:
    using ConnectionError::ConnectionError;
};
class BrokenPipeError : public ConnectionError {
public:
    using ConnectionError::ConnectionError;
};
class ConnectionRefusedError : public ConnectionError {
public:
    using ConnectionError::ConnectionError;
};

/// The operation exceeded the given deadline (Python 3.11+'s builtin
/// TimeoutError, which asyncio.TimeoutError aliases). Like Python's, it is
/// an OSError (errno ETIMEDOUT).
class TimeoutError : public OSError {
public:
    TimeoutError();
    explicit TimeoutError(const std::string& what);
};

/// Raised by Queue.get_nowait() on an empty queue.
class QueueEmpty : public std::runtime_error {
public:
    QueueEmpty() : std::runtime_error("queue is empty") {}
    using std::runtime_error::runtime_error;
};

/// Raised by Queue.put_nowait() on a full queue.
class QueueFull : public std::runtime_error {
public:
    QueueFull() : std::runtime_error("queue is full") {}
    using std::runtime_error::runtime_error;
};

/// Raised by put()/get() on a queue that was shut down (Python 3.13).
class QueueShutDown : public std::runtime_error {
public:
    QueueShutDown() : std::runtime_error("queue is shut down") {}
    using std::runtime_error::runtime_error;
};

/// EOF before the expected bytes were read (asyncio.IncompleteReadError).
///
/// `partial` holds the bytes read before EOF; `expected` the number asked
/// for (empty when reading up to a separator).
class IncompleteReadError : public std::runtime_error {
public:
    IncompleteReadError(std::string partial_bytes, std::optional<std::size_t> expected_bytes);
    std::string partial;
    std::optional<std::size_t> expected;
};

/// The buffer limit was reached while looking for a separator
/// (asyncio.LimitOverrunError); `consumed` is how many bytes to consume.
class LimitOverrunError : public std::runtime_error {
public:
    LimitOverrunError(const std::string& message, std::size_t consumed_bytes)
        : std::runtime_error(message), consumed(consumed_bytes) {}
    std::size_t consumed;
};

/// A Barrier was aborted or reset while waiting (asyncio.BrokenBarrierError).
class BrokenBarrierError : public RuntimeError {
public:
    BrokenBarrierError() : RuntimeError("Barrier aborted") {}
    using RuntimeError::RuntimeError;
};

/// Several exceptions raised together (Python's ExceptionGroup), as a
/// TaskGroup raises them. exceptions() keeps the order they were collected.
class ExceptionGroup : public std::runtime_error {
public:
    ExceptionGroup(std::string message, std::vector<std::exception_ptr> excs);
    /// The contained exceptions, in the order collected.
    const std::vector<std::exception_ptr>& exceptions() const noexcept { return excs_; }
    /// Python's message attribute (without the sub-exception count).
    const std::string& message() const noexcept { return message_; }

    /// True if any contained exception (recursively through nested groups)
    /// is an E: the C++ spelling of `except* E`.
    template <class E>
    bool contains() const {
        for (const auto& e : excs_) {
            // Groups first: ExceptionGroup is itself a std::runtime_error.
            try {
                std::rethrow_exception(e);
            } catch (const ExceptionGroup& g) {
                if (g.contains<E>()) return true;
            } catch (...) {
                if (is_a<E>(e)) return true;
            }
        }
        return false;
    }

    /// Python's ExceptionGroup.split(E) first half: the E's, flattened out of nested groups.
    template <class E>
    std::vector<std::exception_ptr> matching() const {
        std::vector<std::exception_ptr> out;
        for (const auto& e : excs_) {
            try {
                std::rethrow_exception(e);
            } catch (const ExceptionGroup& g) {
                auto sub = g.matching<E>();
                out.insert(out.end(), sub.begin(), sub.end());
            } catch (...) {
                if (is_a<E>(e)) out.push_back(e);
            }
        }
        return out;
    }

private:
    template <class E>
    static bool is_a(const std::exception_ptr& e) {
        try {
            std::rethrow_exception(e);
        } catch (const E&) {
            return true;
        } catch (...) {
        }
        return false;
    }
    std::string message_;
    std::vector<std::exception_ptr> excs_;
};

}  // namespace asyncio
