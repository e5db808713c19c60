// Mirrors Python's asyncio.protocols: BaseProtocol, Protocol, BufferedProtocol, DatagramProtocol.
#pragma once

#include <cstddef>
#include <exception>
#include <span>
#include <string_view>

namespace asyncio {

class Transport;
class DatagramTransport;
class SockAddr;

/// Common base of the protocol interfaces (Python's asyncio.BaseProtocol).
///
/// A transport calls its protocol's methods on the loop's thread, from plain
/// loop callbacks (never inside a task). A callback that throws is reported to
/// the loop's exception handler and closes only its own connection (Python's
/// "Fatal error: protocol.data_received() call failed.").
class BaseProtocol {
public:
    virtual ~BaseProtocol() = default;
    /// The connection is closed: exc is null on a clean close or EOF, else the error.
    virtual void connection_lost(std::exception_ptr exc) { (void)exc; }
    /// The transport's write buffer went over its high-water mark.
    virtual void pause_writing() {}
    /// The transport's write buffer drained to its low-water mark.
    virtual void resume_writing() {}
};

/// Callbacks of a stream connection (Python's asyncio.Protocol).
class Protocol : public BaseProtocol {
public:
    /// The connection is made. `transport` stays valid at least until
    /// connection_lost() returns; keep `transport->shared_from_this()` to hold it longer.
    virtual void connection_made(Transport* transport) { (void)transport; }
    /// Some data arrived. The view is only valid during the call (copy what you keep).
    virtual void data_received(std::string_view data) { (void)data; }
    /// The peer sent EOF. Return true to keep the transport open for writing,
    /// false (the default) to close it, as in Python.
    virtual bool eof_received() { return false; }
};

/// A stream protocol that lends its own buffer to the transport (Python's
/// asyncio.BufferedProtocol): no copy between the socket and the protocol.
class BufferedProtocol : public BaseProtocol {
public:
    virtual void connection_made(Transport* transport) { (void)transport; }
    /// A buffer to receive into; sizehint is a recommended minimum size (0: any).
    /// Raises: an empty span is an error (the connection is closed).
    virtual std::span<char> get_buffer(std::size_t sizehint) = 0;
    /// nbytes were written at the start of the last buffer get_buffer() gave.
    virtual void buffer_updated(std::size_t nbytes) = 0;
    /// As Protocol::eof_received().
    virtual bool eof_received() { return false; }
};

namespace detail {
/// Internal: a BufferedProtocol that can take a received chunk without a
/// copy into its buffer (the streams' protocol hands it straight to a
/// waiting read()). False: it did not, deliver as usual.
struct DirectSink {
    virtual bool take_direct(std::string_view data) = 0;

protected:
    ~DirectSink() = default;
};
}  // namespace detail

/// Callbacks of a datagram endpoint (Python's asyncio.DatagramProtocol).
class DatagramProtocol : public BaseProtocol {
public:
    virtual void connection_made(DatagramTransport* transport) { (void)transport; }
    /// A datagram arrived from addr; the view is only valid during the call.
    virtual void datagram_received(std::string_view data, const SockAddr& addr) {
        (void)data;
        (void)addr;
    }
    /// A previous send or receive raised exc (for example ICMP port unreachable,
    /// seen as ConnectionRefusedError on a connected endpoint).
    virtual void error_received(std::exception_ptr exc) { (void)exc; }
};

}  // namespace asyncio
