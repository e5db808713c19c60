"""Python echo servers for the benchmark: py_echo.py streams|protocol|uvloop-protocol|uvloop-streams <port>."""
import asyncio
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def handle(reader, writer):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


async def main(kind, port):
    loop = asyncio.get_running_loop()
    if kind.endswith("streams"):
        server = await asyncio.start_server(handle, "127.0.0.1", port)
    else:
        server = await loop.create_server(Echo, "127.0.0.1", port)
    print("ready", port, flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind.startswith("uvloop"):
        import uvloop
        uvloop.install()
    asyncio.run(main(kind, port))
