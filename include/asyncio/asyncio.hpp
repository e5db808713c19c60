// Mirrors Python's asyncio package: include this to get everything.
#pragma once

#include "asyncio/exceptions.hpp"
#include "asyncio/events.hpp"
#include "asyncio/futures.hpp"
#include "asyncio/tasks.hpp"
#include "asyncio/timeouts.hpp"
#include "asyncio/taskgroups.hpp"
#include "asyncio/runners.hpp"
#include "asyncio/locks.hpp"
#include "asyncio/queues.hpp"
#include "asyncio/threads.hpp"
#include "asyncio/sockets.hpp"
#include "asyncio/protocols.hpp"
#include "asyncio/transports.hpp"
#include "asyncio/streams.hpp"
#include "asyncio/subprocess.hpp"
