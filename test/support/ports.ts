import net from 'node:net';

/**
 * A free port for a server the test will stop and start again on the same port (a private PostgreSQL or RabbitMQ
 * node): below Linux's ephemeral range (32768-60999). A port from `listen(0)` lies in that range, and while the
 * server is down any outgoing connection on the machine may take it as its local port, so the restarted server
 * cannot bind it (seen under load with parallel test files; test-server-java.sh avoids the range for the same
 * reason). Random, so parallel files rarely try the same one, and checked by binding it.
 */
export async function restartablePort(): Promise<number> {
  for (let port = 20_000 + Math.floor(Math.random() * 12_000); ; port = port >= 32_000 ? 20_000 : port + 1) {
    if (await canListen(port)) return port;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
