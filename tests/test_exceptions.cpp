// Tests for asyncio.exceptions: the hierarchy and the data the exceptions carry.
#include <gtest/gtest.h>

#include <asyncio/asyncio.hpp>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>

using namespace asyncio;

namespace {

// Which of the usual catch clauses sees the exception first?
template <class E>
std::string caught_by(E e) {
    try {
        throw e;
    } catch (const std::runtime_error&) {
        return "runtime_error";
    } catch (const std::logic_error&) {
        return "logic_error";
    } catch (const std::exception&) {
        return "exception";
    }
}

}  // namespace

TEST(ExceptionHierarchy, CancelledErrorEscapesRuntimeAndLogicErrorHandlers) {
    // Python's CancelledError is a BaseException: `except Exception` must not swallow it.
    EXPECT_EQ(caught_by(CancelledError("x")), "exception");
    static_assert(!std::is_base_of_v<std::runtime_error, CancelledError>);
    static_assert(!std::is_base_of_v<std::logic_error, CancelledError>);
    static_assert(std::is_base_of_v<std::exception, CancelledError>);
}

TEST(ExceptionHierarchy, CancelledErrorWhatIsTheMessage) {
    EXPECT_STREQ(CancelledError().what(), "");
    EXPECT_STREQ(CancelledError("because").what(), "because");
}

TEST(ExceptionHierarchy, OrdinaryErrorsAreRuntimeOrLogicErrors) {
    EXPECT_EQ(caught_by(RuntimeError("r")), "runtime_error");
    EXPECT_EQ(caught_by(InvalidStateError("i")), "runtime_error");
    EXPECT_EQ(caught_by(TimeoutError()), "runtime_error");  // OSError is a std::system_error
    EXPECT_EQ(caught_by(QueueEmpty()), "runtime_error");
    EXPECT_EQ(caught_by(QueueFull()), "runtime_error");
    EXPECT_EQ(caught_by(QueueShutDown()), "runtime_error");
    EXPECT_EQ(caught_by(BrokenBarrierError()), "runtime_error");
    EXPECT_EQ(caught_by(ValueError("v")), "logic_error");
    static_assert(std::is_base_of_v<RuntimeError, BrokenBarrierError>);
}

TEST(ExceptionHierarchy, TimeoutErrorIsAnOSErrorWithETIMEDOUT) {
    // Python 3.11+: asyncio.TimeoutError is the builtin TimeoutError, an OSError.
    static_assert(std::is_base_of_v<OSError, TimeoutError>);
    TimeoutError t;
    EXPECT_EQ(t.errno_value(), ETIMEDOUT);
}

TEST(ExceptionHierarchy, ConnectionErrorSubclasses) {
    static_assert(std::is_base_of_v<std::system_error, OSError>);
    static_assert(std::is_base_of_v<OSError, ConnectionError>);
    static_assert(std::is_base_of_v<ConnectionError, ConnectionResetError>);
    static_assert(std::is_base_of_v<ConnectionError, ConnectionAbortedError>);
    static_assert(std::is_base_of_v<ConnectionError, BrokenPipeError>);
    static_assert(std::is_base_of_v<ConnectionError, ConnectionRefusedError>);
    try {
        throw ConnectionRefusedError(ECONNREFUSED, "connect 127.0.0.1:1");
    } catch (const ConnectionError& e) {
        EXPECT_EQ(e.errno_value(), ECONNREFUSED);
        EXPECT_EQ(e.code(), std::error_code(ECONNREFUSED, std::generic_category()));
        EXPECT_NE(std::string(e.what()).find("connect 127.0.0.1:1"), std::string::npos);
    }
}

TEST(IncompleteReadError, CarriesPartialAndExpected) {
    IncompleteReadError e("abc", 10);
    EXPECT_EQ(e.partial, "abc");
    ASSERT_TRUE(e.expected.has_value());
    EXPECT_EQ(*e.expected, 10u);
    EXPECT_NE(std::string(e.what()).find("3"), std::string::npos) << e.what();
    IncompleteReadError sep("xy", std::nullopt);
    EXPECT_FALSE(sep.expected.has_value());
    EXPECT_EQ(sep.partial, "xy");
}

TEST(LimitOverrunError, CarriesConsumed) {
    LimitOverrunError e("Separator is not found, and chunk exceed the limit", 17);
    EXPECT_EQ(e.consumed, 17u);
    EXPECT_EQ(caught_by(e), "runtime_error");
}

TEST(ExceptionGroup, KeepsOrderAndMatchesNestedGroups) {
    auto inner = std::make_exception_ptr(
        ExceptionGroup("inner", {std::make_exception_ptr(ValueError("v2")), std::make_exception_ptr(TimeoutError())}));
    ExceptionGroup g("outer",
                     {std::make_exception_ptr(ValueError("v1")), inner, std::make_exception_ptr(RuntimeError("r"))});
    EXPECT_EQ(g.message(), "outer");
    ASSERT_EQ(g.exceptions().size(), 3u);
    EXPECT_TRUE(g.contains<ValueError>());
    EXPECT_TRUE(g.contains<TimeoutError>());  // found inside the nested group
    EXPECT_TRUE(g.contains<RuntimeError>());
    EXPECT_FALSE(g.contains<QueueEmpty>());
    auto values = g.matching<ValueError>();
    ASSERT_EQ(values.size(), 2u);
    try {
        std::rethrow_exception(values[0]);
    } catch (const ValueError& e) {
        EXPECT_STREQ(e.what(), "v1");
    }
    try {
        std::rethrow_exception(values[1]);
    } catch (const ValueError& e) {
        EXPECT_STREQ(e.what(), "v2");
    }
    EXPECT_TRUE(g.matching<QueueFull>().empty());
    EXPECT_EQ(caught_by(g), "runtime_error");
}

TEST(ExceptionGroup, WhatMentionsTheCount) {
    // Python: str(ExceptionGroup("msg", [e1, e2])) == "msg (2 sub-exceptions)".
    ExceptionGroup g("msg", {std::make_exception_ptr(ValueError("a")), std::make_exception_ptr(ValueError("b"))});
    EXPECT_STREQ(g.what(), "msg (2 sub-exceptions)");
    ExceptionGroup one("solo", {std::make_exception_ptr(ValueError("a"))});
    EXPECT_STREQ(one.what(), "solo (1 sub-exception)");
}
