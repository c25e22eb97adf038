# SPDX-License-Identifier: Apache-2.0
# A 400 of the module's (a wrong or expired code, an unknown address) keeps
# an HTTP/1.1 connection open, as httpd keeps it after a 200: the request
# was read whole. httpd closes after its own 400s (ap_status_drops_connection);
# src/httpd/keepalive.c takes its "Connection: close" out again. Every other
# reason to close still closes: the client's "Connection: close", HTTP/1.0,
# a body that could not be read, MaxKeepAliveRequests, KeepAlive Off.
# Raw sockets: whether the answer came on the same connection, and whether
# the server closed it, is what is tested.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest ();
use lib 't/lib';
use HydraTest qw(dbh reset_db json check signup_code log_since wait_until
                 http_sock http_post http_answer http_closed http_closes);

plan tests => 43;

my $INVALID = '{"detail":"Invalid or expired verification code"}';
dbh();
reset_db();
my $run = sprintf '%x%x', time, $$;

sub connect_to {
    my ($module) = @_;
    Apache::TestRequest::module($module);
    return http_sock(Apache::TestRequest::hostport());
}

# one verify request on $sock; %o: proto, headers (as http_post), body
# (raw), email, code
sub send_verify {
    my ($sock, %o) = @_;
    return http_post($sock, '/v1/public/signup/verify',
        $o{body} // { code => $o{code} // '000000', email => $o{email},
                      tenant_slug => 'demo' },
        map { exists $o{$_} ? ($_ => $o{$_}) : () } qw(proto headers));
}

# ---- pending signups: 400, 400, then the right code, one connection -------
my ($id, $code) = signup_code(email => "keep-$run\@example.com");
check(defined $code, 'a pending signup with a code');
# (a copy: a string used as a number would be encoded as a JSON number)
my $wrong = sprintf '%06d', ("$code" + 1) % 1000000;
my $sock = connect_to('default');
my @seen;
for my $try (1, 2) {
    send_verify($sock, email => "keep-$run\@example.com", code => $wrong);
    my ($st, $head, $body) = http_answer($sock);
    ok t_cmp(($st // "none") . " " . ($body // ""), "400 $INVALID",
             "wrong code $try: 400 on the same connection");
    ok t_cmp(http_closes($head), 0, "wrong code $try: no Connection: close");
    ok t_cmp(($head // "") =~ /^Content-Length: 49\r?$/mi ? 1 : 0, 1,
             "wrong code $try: the head is whole (Content-Length)");
}
# an unknown address takes the same path
send_verify($sock, email => "nobody-$run\@example.com");
my ($st, $head, $body) = http_answer($sock);
ok t_cmp(($st // "none") . " " . ($body // ""), "400 $INVALID",
         'unknown address: 400 on the same connection');
ok t_cmp(http_closes($head), 0, 'unknown address: no Connection: close');
# and the connection still carries a request that succeeds
send_verify($sock, email => "keep-$run\@example.com", code => $code);
($st, $head, $body) = http_answer($sock);
ok t_cmp($st // 'none', 200, 'the right code next on that connection: 200');
my $d = eval { json()->decode($body) } // {};
ok t_cmp($d->{customer_id} // '', $id, 'its tokens are for that customer');
send_verify($sock, email => "keep-$run\@example.com", code => $code);
($st, $head, $body) = http_answer($sock);
ok t_cmp(($st // "none") . " " . ($body // ""), "400 $INVALID",
         'the used code again: 400, still the same connection');
ok t_cmp(http_closes($head), 0, 'used code: no Connection: close');
close $sock;

# ---- every other reason to close still closes -----------------------------
# the client asks to close
$sock = connect_to('default');
send_verify($sock, email => "nobody-$run\@example.com",
            headers => ['Connection: close']);
($st, $head) = http_answer($sock);
ok t_cmp($st // 'none', 400, 'Connection: close from the client: 400');
ok t_cmp(http_closes($head), 1, '... with Connection: close');
check(http_closed($sock), '... and the server closed the connection');
close $sock;

# HTTP/1.0 (no keep-alive asked)
$sock = connect_to('default');
send_verify($sock, email => "nobody-$run\@example.com", proto => 'HTTP/1.0');
($st, $head) = http_answer($sock);
ok t_cmp($st // 'none', 400, 'HTTP/1.0: 400');
check(http_closed($sock), 'HTTP/1.0: the server closed the connection');
close $sock;

# a body that could not be read (a broken chunk size; httpd answers it
# itself): the rest of the stream cannot be trusted
my $access = Apache::Test::vars('t_logs') . '/access_log';
my $mark = -s $access;
$sock = connect_to('default');
send_verify($sock, headers => ['Transfer-Encoding: chunked'],
            body => "zz\r\n{}\r\n0\r\n\r\n");
($st, $head) = http_answer($sock);
ok t_cmp($st // 'none', 400, 'unreadable chunked body: 400');
ok t_cmp(http_closes($head), 1, '... with Connection: close');
check(http_closed($sock), '... and the server closed the connection');
close $sock;
# httpd answered it; the module adds no second answer (whose status, -102,
# would be logged)
my $logged = '';
wait_until(sub { ($logged = log_since($access, $mark)) =~ /verify/ }, 5);
ok t_cmp(join(' ', $logged =~ m{"POST /v1/public/signup/verify HTTP/1\.1" (\S+)}g),
         '400', 'the access log shows that request once, with 400');

# MaxKeepAliveRequests 3: as after 200s (the plans, the control), httpd
# keeps the connection for three answers and closes it with the fourth
for my $what ('plans', 'verify') {
    $sock = connect_to('vhost_keep3');
    for my $n (1 .. 4) {
        if ($what eq 'plans') {
            syswrite($sock, "GET /v1/public/signup/plans/demo HTTP/1.1\r\n"
                     . "Host: ${*$sock}{hs_hp}\r\n\r\n");
        }
        else {
            send_verify($sock, email => "nobody-$n-$run\@example.com");
        }
        ($st, $head) = http_answer($sock);
        ok t_cmp($st // 'none', $what eq 'plans' ? 200 : 400,
                 "MaxKeepAliveRequests 3, $what $n: answered");
        ok t_cmp(http_closes($head), $n == 4 ? 1 : 0,
                 "$what $n: " . ($n == 4 ? 'Connection: close' : 'kept'));
    }
    check(http_closed($sock), "$what: after the fourth the server closed");
    close $sock;
}

# KeepAlive Off
$sock = connect_to('vhost_keepoff');
send_verify($sock, email => "nobody-$run\@example.com");
($st, $head) = http_answer($sock);
ok t_cmp($st // 'none', 400, 'KeepAlive Off: 400');
ok t_cmp(http_closes($head), 1, '... with Connection: close');
check(http_closed($sock), '... and the server closed the connection');
close $sock;
