#!/usr/bin/env python3
"""bench/flood.py — memory per held connection, doorward beside nginx.

Usage: bench/flood.py N DOORWARD_BIN [flood|keepalive]
  flood      N connections, half silent, half with half a request head
  keepalive  N connections, each served one request, then held idle
Both proxies (nginx: one worker, client_header_timeout 10s; doorward: its
defaults) front the same tiny nginx upstream on loopback. Prints RSS before,
while the connections are held, and 5 s after they close. Raise `ulimit -n`
first (N connections each side). A measurement, not a test.
"""
import shutil
import socket, subprocess, sys, time, os, tempfile
MODE=sys.argv[3] if len(sys.argv)>3 else "flood"
N=int(sys.argv[1]) if len(sys.argv)>1 else 10000
def rss(pids): return sum(int(l.split()[1]) for p in pids for l in open(f"/proc/{p}/status") if l.startswith("VmRSS:"))
def free():
    s=socket.socket(); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]; s.close(); return p
T=tempfile.mkdtemp(); os.chmod(T,0o755); os.makedirs(T+"/tmp")
up=free(); nx=free(); dw=free()
open(T+"/up.conf","w").write(f"worker_processes 1; pid {T}/up.pid; error_log {T}/up.err; events {{}} http {{ access_log off; client_body_temp_path {T}/tmp/c; proxy_temp_path {T}/tmp/p; fastcgi_temp_path {T}/tmp/f; uwsgi_temp_path {T}/tmp/u; scgi_temp_path {T}/tmp/s; server {{ listen 127.0.0.1:{up}; return 200 ok; }} }}")
open(T+"/nx.conf","w").write(f"worker_processes 1; worker_rlimit_nofile 30000; pid {T}/nx.pid; error_log {T}/nx.err; events {{ worker_connections 20000; }} http {{ access_log off; client_header_timeout 10s; client_body_temp_path {T}/tmp/c; proxy_temp_path {T}/tmp/p; fastcgi_temp_path {T}/tmp/f; uwsgi_temp_path {T}/tmp/u; scgi_temp_path {T}/tmp/s; server {{ listen 127.0.0.1:{nx} backlog=16384; location / {{ proxy_pass http://127.0.0.1:{up}; }} }} }}")
open(T+"/dw.toml","w").write(f'[server]\nlisten = "127.0.0.1:{dw}"\n[log]\nlevel = "warn"\n[[route]]\nname = "a"\npath_prefix = "/"\nupstream = "http://127.0.0.1:{up}"\npublic = ["/"]\n')
procs=[subprocess.Popen(["nginx","-p",T,"-c",T+"/up.conf","-g","daemon off;"]),
       subprocess.Popen(["nginx","-p",T,"-c",T+"/nx.conf","-g","daemon off;"]),
       subprocess.Popen([sys.argv[2],"serve","--config",T+"/dw.toml"],stdout=subprocess.DEVNULL)]
time.sleep(2)
def kids(pid): return [int(x) for x in subprocess.run(["pgrep","-P",str(pid)],capture_output=True,text=True).stdout.split()]
who={"nginx":kids(procs[1].pid) or [procs[1].pid], "doorward":[procs[2].pid]}
port={"nginx":nx,"doorward":dw}
for name in ["nginx","doorward"]:
    for _ in range(20):
        s=socket.create_connection(("127.0.0.1",port[name])); s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); s.recv(100); s.close()
    time.sleep(0.5); before=rss(who[name]); socks=[]
    for i in range(N):
        s=socket.create_connection(("127.0.0.1",port[name]))
        if MODE=="keepalive":
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"); s.recv(1000)
        elif i%2: s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        socks.append(s)
    time.sleep(1.5); held=rss(who[name])
    for s in socks: s.close()
    time.sleep(5); after=rss(who[name])
    print(f"{name:9s} {N} conns ({MODE}): RSS before {before} KiB, held {held} KiB ({(held-before)/N:.2f} KiB/conn), 5 s after close {after} KiB")
for p in procs:
    p.terminate()
    p.wait()
shutil.rmtree(T, ignore_errors=True)
