# SPDX-License-Identifier: Apache-2.0
package HydraTest;
# Shared helpers for the Apache::Test suite: the database (DBD::Pg, the
# same PostgreSQL the module uses), test tenants, JSON requests.
use strict;
use warnings FATAL => 'all';

use DBI ();
use JSON::PP ();
use Exporter 'import';
use Apache::TestRequest ();

our @EXPORT_OK = qw(httpd_t free_port dbh reset_db add_tenant post_json get_json json
                    spool_files);

my $json = JSON::PP->new->canonical->allow_nonref;
sub json { $json }

my $dbh;
sub dbh {
    return $dbh if $dbh && $dbh->ping;
    $dbh = DBI->connect("dbi:Pg:$ENV{HYDRA_PG_DSN}", undef, undef,
                        { RaiseError => 1, AutoCommit => 1, PrintError => 0,
                          pg_enable_utf8 => 1 })
        or die "cannot connect to $ENV{HYDRA_PG_DSN}";
    return $dbh;
}

# Removes every tenant but demo (and demo's customers), then empties the
# spool, so each test file starts from the same state.
sub reset_db {
    my $db = dbh();
    $db->do("DELETE FROM customers");
    $db->do("DELETE FROM hydra_signup_mail_log");
    $db->do("DELETE FROM hydra_signup_tenant_mails");
    $db->do("DELETE FROM hydra_signup_decoys");
    $db->do("DELETE FROM hydra_signup_labels");
    $db->do("DELETE FROM tenants WHERE slug <> 'demo'");
    $db->do("UPDATE nodes SET used = 0");
    for my $d (qw(new tmp cur)) {
        unlink glob "$ENV{HYDRA_STATE}/spool/$d/*";
    }
}

# add_tenant(slug, site_domain, [nodes: [capacity, used, kind, active]...],
#            enabled, [plans])
sub add_tenant {
    my (%a) = @_;
    my $db = dbh();
    my ($id) = $db->selectrow_array(
        "INSERT INTO tenants (slug, name, site_domain, signup_enabled)
         VALUES (?, ?, ?, ?) RETURNING id", undef,
        $a{slug}, $a{name} // ucfirst($a{slug}),
        $a{domain} // "$a{slug}.example.net", $a{enabled} // 1);
    my $pos = 0;
    for my $p (@{ $a{plans} // [['starter', '$5/mo', ['1 site']]] }) {
        $db->do("INSERT INTO plans (tenant_id, name, description, price,
                 features, position, public) VALUES (?, ?, ?, ?, ?, ?, ?)",
                undef, $id, $p->[0], "The $p->[0] plan", $p->[1], $p->[2],
                $p->[3] // ++$pos, $p->[4] // 1);
    }
    my $n = 0;
    for my $node (@{ $a{nodes} // [[100, 0]] }) {
        $n++;
        $db->do("INSERT INTO nodes (tenant_id, hostname, kind, capacity,
                 used, active) VALUES (?, ?, ?, ?, ?, ?)", undef, $id,
                "$a{slug}-node-$n.example.net", $node->[2] // 'shared',
                $node->[0], $node->[1] // 0, $node->[3] // 1);
    }
    return $id;
}

sub post_json {
    my ($url, $data, %h) = @_;
    my $body = ref $data ? $json->encode($data) : $data;
    return Apache::TestRequest::POST($url,
        'Content-Type' => 'application/json', %h, content => $body);
}

sub get_json {
    my ($res) = @_;
    my $d = eval { $json->decode($res->decoded_content) };
    return $d;
}

sub spool_files {
    my ($sub) = @_;
    return sort glob "$ENV{HYDRA_STATE}/spool/$sub/*";
}


# ---- verify and token helpers (t/verify*.t, t/jwt*.t) --------------------
push @EXPORT_OK, qw(spool_code signup_code verify_code code_hmac
                    jwt_parts read_file_trimmed);

sub read_file_trimmed {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "cannot read $path: $!";
    local $/;
    my $d = <$fh>;
    close $fh;
    $d =~ s/\r?\n\z//;
    return $d;
}

# The stored form of a code: hex HMAC-SHA256 of "<customer_id>:<code>"
# under the code secret (as src/handle/signup.c stores it).
sub code_hmac {
    my ($customer, $code) = @_;
    require Digest::SHA;
    return Digest::SHA::hmac_sha256_hex("$customer:$code",
        read_file_trimmed("$ENV{HYDRA_STATE}/code.secret"));
}

# The code of the verification mail to $email among the spool's new/
# messages, skipping the files in %$seen (name => 1); undef when none.
sub spool_code {
    my ($email, $seen) = @_;
    require MIME::QuotedPrint;
    my $found;
    for my $f (spool_files('new')) {
        next if $seen && $seen->{$f};
        open my $fh, '<:raw', $f or next;
        my $m = do { local $/; <$fh> };
        close $fh;
        my ($head, $body) = split /\r?\n\r?\n/, $m, 2;
        next unless defined $body;
        $head =~ s/\r?\n[ \t]+/ /g;
        next unless $head =~ /^To:[^\r\n]*\Q$email\E/mi;
        $body = MIME::QuotedPrint::decode($body)
            if $head =~ /^Content-Transfer-Encoding:\s*quoted-printable/mi;
        my @codes = $body =~ /^(\d{6})\r?$/mg;
        $found = $codes[0] if @codes == 1;
    }
    return $found;
}

# signup_code(email => ..., tenant => 'demo', company => ..., plan => ...)
# POSTs a signup to the current module (Apache::TestRequest::module) and
# returns (customer_id, code, response); code is undef unless 201 + mail.
sub signup_code {
    my (%a) = @_;
    my %seen = map { $_ => 1 } spool_files('new');
    my $res = post_json('/v1/public/signup', {
        company_name => $a{company} // 'Verify Co',
        email        => $a{email},
        tenant_slug  => $a{tenant} // 'demo',
        ($a{plan} ? (plan => $a{plan}) : ()),
    });
    my $d = get_json($res) // {};
    return ($d->{customer_id}, undef, $res) unless $res->code == 201;
    return ($d->{customer_id}, spool_code($a{email}, \%seen), $res);
}

# POST <location>/verify
sub verify_code {
    my ($email, $code, $tenant) = @_;
    return post_json('/v1/public/signup/verify',
                     { email => $email, code => $code,
                       tenant_slug => $tenant // 'demo' });
}

# (header, claims, signing input, signature) of a compact JWS, unverified.
sub jwt_parts {
    my ($jwt) = @_;
    require MIME::Base64;
    my @p = split /\./, $jwt, -1;
    return unless @p == 3;
    my $dec = sub {
        my $s = shift;
        return undef if $s =~ /[^A-Za-z0-9_-]/ || $s =~ /=/;
        $s =~ tr{-_}{+/};
        $s .= '=' x ((4 - length($s) % 4) % 4);
        return MIME::Base64::decode_base64($s);
    };
    my $h = eval { $json->decode($dec->($p[0])) };
    my $c = eval { $json->decode($dec->($p[1])) };
    return ($h, $c, "$p[0].$p[1]", $dec->($p[2]));
}

# ---- abuse and fault helpers (t/abuse_*.t, t/fault_*.t) ------------------
push @EXPORT_OK, qw(pg_do httpd_pid spool_recipients start_clients
                    client_answers wait_clients wait_until tally
                    invariant_errors mail_errors check);

# ok() of Test.pm compares with its second argument: a named condition
sub check {
    my ($c, $name) = @_;
    require Apache::TestUtil;
    local $Test::TestLevel = $Test::TestLevel + 1;
    return Test::ok(Apache::TestUtil::t_cmp($c ? 1 : 0, 1, $name));
}

# hs_pg_<fn> (stop, kill, restart) of scripts/lib/pg.sh on the suite's
# PostgreSQL; true on success.
sub pg_do {
    my ($fn) = @_;
    return system('bash', '-c', ". '$ENV{HYDRA_SRC}/scripts/lib/pg.sh'; "
                  . "hs_pg_$fn '$ENV{HYDRA_PG_DATA}' >/dev/null 2>&1") == 0;
}

# The httpd parent's pid.
sub httpd_pid {
    my $f = Apache::Test::vars('t_pid_file')
        // Apache::Test::vars('t_logs') . '/httpd.pid';
    open my $fh, '<', $f or return;
    my $pid = <$fh> // '';
    close $fh;
    chomp $pid;
    return $pid =~ /^\d+$/ ? $pid : undef;
}

# { lower-case To address => number of messages } of DIR/SUB (default: the
# suite's spool, new/).
sub spool_recipients {
    my ($dir, $sub) = @_;
    $dir //= "$ENV{HYDRA_STATE}/spool";
    $sub //= 'new';
    my %n;
    for my $f (glob "$dir/$sub/*") {
        open my $fh, '<:raw', $f or next;
        my $head = '';
        while (my $l = <$fh>) {
            last if $l =~ /^\r?\n\z/;
            $head .= $l;
        }
        close $fh;
        $head =~ s/\r?\n[ \t]+/ /g;
        my ($to) = $head =~ /^To:[ \t]*([^\r\n]*)/mi;
        $to //= '';
        $to = $1 if $to =~ /<([^>]*)>/;
        $n{lc $to}++;
    }
    return \%n;
}

# start_clients(clients => 8, max => 50, url => URL,
#               body => sub { my ($client, $n) = @_; {...} },
#               headers => sub { ... list ... }, timeout => 20,
#               pause_503 => seconds, stop => FILE, together => 1)
# Forks the clients (together: they start at the same moment, once all are
# forked); each POSTs its JSON bodies one after the other, a new
# connection each (LWP timeout: a hung request is an answer "none"), until
# it sent max or the stop file exists. Every answer is a line in the
# client's own file (client n status seconds customer_id email); a handle
# for client_answers / wait_clients is returned at once.
sub start_clients {
    my (%a) = @_;
    require File::Temp;
    require LWP::UserAgent;
    require POSIX;
    require Time::HiRes;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my @pids;
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    for my $c (1 .. $a{clients}) {
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if (!$pid) {
            close $go_w;
            my $ua = LWP::UserAgent->new(timeout => $a{timeout} // 20,
                                         keep_alive => 0);
            open my $out, '>', "$dir/$c" or POSIX::_exit(1);
            $out->autoflush(1);
            sysread $go_r, my $x, 1 if $a{together};    # EOF: go
            for my $n (1 .. $a{max}) {
                last if $a{stop} && -e $a{stop};
                my $body = $a{body}->($c, $n);
                my @h = $a{headers} ? $a{headers}->($c, $n) : ();
                my $t0 = Time::HiRes::time();
                my $res = $ua->post($a{url}, 'Content-Type' => 'application/json',
                                    @h, Content => $json->encode($body));
                my $dt = Time::HiRes::time() - $t0;
                my $st = $res->code;
                # LWP's own answers (refused, reset, timed out) are no answer
                $st = 'none' if ($res->header('Client-Warning') // '')
                    eq 'Internal response';
                my $d = eval { $json->decode($res->decoded_content) };
                my $id = ref $d eq 'HASH' && $d->{customer_id}
                    ? $d->{customer_id} : '-';
                printf $out "%d %d %s %.3f %s %s\n", $c, $n, $st, $dt, $id,
                    $body->{email} // '-';
                Time::HiRes::sleep($a{pause_503})
                    if $st eq '503' && $a{pause_503};
            }
            close $out;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $go_r;
    close $go_w;
    return { dir => $dir, pids => \@pids, n => $a{clients} };
}

# The answers written so far: hashrefs {client n status secs id email}.
sub client_answers {
    my ($h) = @_;
    my @r;
    for my $c (1 .. $h->{n}) {
        open my $fh, '<', "$h->{dir}/$c" or next;
        while (my $l = <$fh>) {
            next unless $l =~ /\n\z/;    # being written
            my @f = split ' ', $l;
            push @r, { client => $f[0], n => $f[1], status => $f[2],
                       secs => $f[3], id => $f[4], email => $f[5] };
        }
        close $fh;
    }
    return @r;
}

# Waits at most timeout seconds for the clients, kills the ones left
# ($h->{hung} says how many) and returns every answer.
sub wait_clients {
    my ($h, $timeout) = @_;
    require POSIX;
    my $deadline = time + ($timeout // 60);
    my %left = map { $_ => 1 } @{ $h->{pids} };
    while (%left && time < $deadline) {
        for my $p (keys %left) {
            delete $left{$p} if waitpid($p, POSIX::WNOHANG()) > 0;
        }
        select undef, undef, undef, 0.05 if %left;
    }
    for my $p (keys %left) {
        kill 'KILL', $p;
        waitpid $p, 0;
    }
    $h->{hung} = scalar keys %left;
    return client_answers($h);
}

# Waits (at most 15 s) until the resend interval of SECS seconds is over
# for the last code mailed to EMAIL, by the database's clock (the clock the
# module compares with), with 0.1 s to spare; true when it is.
sub wait_resend {
    my ($email, $secs) = @_;
    return wait_until(sub {
        my ($over) = dbh()->selectrow_array(
            "SELECT coalesce(max(sent_at) <= now() - ?::float8 * interval '1 second',
                             true)
               FROM hydra_signup_mail_log WHERE email_lower = lower(?)",
            undef, $secs + 0.1, $email);
        $over;
    }, 15);
}
push @EXPORT_OK, 'wait_resend';

# What file holds from byte offset on: the log lines written since a test
# noted the file's size. Dies when the file cannot be read (a check of what
# a log does not hold must not pass on a log that is not there).
sub log_since {
    my ($file, $offset) = @_;
    open my $fh, '<', $file or die "log_since: cannot read $file: $!";
    seek $fh, $offset // 0, 0;
    local $/;
    my $t = <$fh> // '';
    close $fh;
    return $t;
}
push @EXPORT_OK, 'log_since';

# Polls cond every 50 ms for at most timeout seconds; its last value.
sub wait_until {
    my ($cond, $timeout) = @_;
    require Time::HiRes;
    my $deadline = Time::HiRes::time() + $timeout;
    my $v;
    until (($v = $cond->()) || Time::HiRes::time() > $deadline) {
        Time::HiRes::sleep(0.05);
    }
    return $v;
}

# "201:12 503:3" for a list of statuses
sub tally {
    my %n;
    $n{$_}++ for @_;
    return join ' ', map { "$_:$n{$_}" } sort keys %n;
}

# DESIGN.md invariants 1 and 2 for one tenant: the violations found (none:
# they hold).
sub invariant_errors {
    my ($tenant) = @_;
    my $db = dbh();
    my @e;
    my $nodes = $db->selectall_arrayref(
        "SELECT n.hostname, n.used, n.capacity,
                (SELECT count(*) FROM customers c WHERE c.node_id = n.id)
         FROM nodes n WHERE n.tenant_id = ? ORDER BY n.hostname", undef,
        $tenant);
    for my $n (@$nodes) {
        push @e, "node $n->[0]: used $n->[1], $n->[3] customers"
            if $n->[1] != $n->[3];
        push @e, "node $n->[0]: used $n->[1] > capacity $n->[2]"
            if $n->[1] > $n->[2];
    }
    my ($noslot) = $db->selectrow_array(
        "SELECT count(*) FROM customers WHERE tenant_id = ?
         AND node_id IS NULL", undef, $tenant);
    push @e, "$noslot customers without a node slot" if $noslot;
    my ($nocode) = $db->selectrow_array(
        "SELECT count(*) FROM customers c WHERE c.tenant_id = ?
         AND c.status = 'pending' AND NOT EXISTS
         (SELECT 1 FROM hydra_signup_codes k WHERE k.customer_id = c.id)",
        undef, $tenant);
    push @e, "$nocode pending customers without a code" if $nocode;
    my ($orphan) = $db->selectrow_array(
        "SELECT count(*) FROM hydra_signup_codes k WHERE NOT EXISTS
         (SELECT 1 FROM customers c WHERE c.id = k.customer_id)");
    push @e, "$orphan codes without a customer" if $orphan;
    return @e;
}

# DESIGN.md invariant 3 for one tenant after a stream of signups whose
# answers are \@answers (client_answers): every message in new/ is for a
# committed customer, every 201 is a committed customer with its message,
# nothing is left in tmp/. Returns (violations, number of committed
# customers whose request was answered with an error).
sub mail_errors {
    my ($tenant, $answers, $spool) = @_;
    $spool //= "$ENV{HYDRA_STATE}/spool";
    my $db = dbh();
    my %cust = map { lc($_->[1]) => $_->[0] } @{ $db->selectall_arrayref(
        "SELECT id::text, email FROM customers WHERE tenant_id = ?", undef,
        $tenant) };
    my $mail = spool_recipients($spool, 'new');
    my @e;
    for my $to (sort keys %$mail) {
        push @e, "message in new/ for $to, who is no customer"
            unless $cust{$to};
    }
    my ($committed_unanswered, %ok) = (0);
    for my $a (@$answers) {
        next unless $a->{email} && $a->{email} ne '-';
        my $em = lc $a->{email};
        if ($a->{status} eq '201') {
            $ok{$em} = 1;
            push @e, "201 for $em but no such customer"
                unless $cust{$em} && $cust{$em} eq $a->{id};
            push @e, "201 for $em but no message in new/" unless $mail->{$em};
        }
    }
    for my $em (keys %cust) {
        $committed_unanswered++ if !$ok{$em} && !$mail->{$em};
    }
    my @tmp = glob "$spool/tmp/*";
    push @e, scalar(@tmp) . " files left in tmp/" if @tmp;
    return (\@e, $committed_unanswered);
}

# ---- helpers of the signup tests (t/signup*.t) --------------------------
push @EXPORT_OK, qw(signup_post json_bytes state_snapshot read_mail
                    raw_http pg_stop pg_start wait_port);

use constant SIGNUP_URL => '/v1/public/signup';
# encodes to UTF-8 bytes (json() gives characters, for decoded content)
my $json_bytes = JSON::PP->new->utf8->canonical->allow_nonref;
sub json_bytes { $json_bytes }

# POST a signup body (a hash ref is JSON-encoded, a string sent verbatim);
# headers given replace the default Content-Type.
sub signup_post {
    my ($data, %h) = @_;
    my %hh = ('Content-Type' => 'application/json', %h);
    my $body = ref $data ? $json_bytes->encode($data) : $data;
    return Apache::TestRequest::POST(SIGNUP_URL, %hh, content => $body);
}

# Everything a signup may write, as one comparable string: customers,
# codes, node counters, the mail log, refresh tokens, decoys, site label
# counters and the spool.
sub state_snapshot {
    my $db = dbh();
    my @parts;
    for my $q (
        "SELECT id, tenant_id, company_name, email, plan, node_id, site_url,
                status, created_at, verified_at FROM customers ORDER BY id",
        "SELECT customer_id, code_hmac, expires_at, attempts, sent_at, void,
                consumed_at FROM hydra_signup_codes ORDER BY customer_id",
        "SELECT id, used, capacity FROM nodes ORDER BY id",
        "SELECT tenant_id, email_lower, sent_at FROM hydra_signup_mail_log
         ORDER BY 1, 2, 3",
        "SELECT tenant_id, minute, backend, n FROM hydra_signup_tenant_mails
         ORDER BY 1, 2, 3",
        "SELECT count(*) FROM hydra_signup_refresh_tokens",
        "SELECT count(*) FROM tenants",
        "SELECT tenant_id, email_lower, site_url, sent_at
         FROM hydra_signup_decoys ORDER BY 1, 2",
        "SELECT tenant_id, base, n FROM hydra_signup_labels ORDER BY 1, 2") {
        my $rows = $db->selectall_arrayref($q);
        push @parts, join "\n", map { join '|', map { $_ // '\N' } @$_ } @$rows;
    }
    for my $d (qw(new tmp cur)) {
        push @parts, "$d: " . join ',', map { s{.*/}{}r } spool_files($d);
    }
    return join "\n--\n", @parts;
}

# Reads a spooled message: { raw, headers => {lc name => unfolded value},
# header_names => [in order], body => decoded body (QP/base64), crlf => all
# lines end in CRLF }.
# A missing or empty message (no path, an empty file) reads as one that
# fails every check: no CRLF, no headers, header_names ['(no message)'].
sub read_mail {
    my ($path) = @_;
    my $raw = '';
    if (defined $path && open my $fh, '<:raw', $path) {
        local $/;
        $raw = <$fh> // '';
        close $fh;
    }
    return { raw => '', headers => {}, header_names => ['(no message)'],
             body => '', crlf => 0 } if $raw eq '';
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my %m = (raw => $raw, headers => {}, header_names => []);
    (my $nocrlf = $raw) =~ s/\r\n//g;
    $m{crlf} = ($nocrlf !~ /[\r\n]/) ? 1 : 0;
    $head =~ s/\r\n([ \t])/$1/g; # unfold
    for my $line (split /\r\n/, $head) {
        my ($n, $v) = $line =~ /^([^:\s]+):\s*(.*)$/ or next;
        push @{ $m{header_names} }, $n;
        $m{headers}{lc $n} = $v;
    }
    my $cte = lc($m{headers}{'content-transfer-encoding'} // '');
    $body //= '';
    if ($cte eq 'quoted-printable') {
        require MIME::QuotedPrint;
        # MIME::QuotedPrint wants LF soft breaks
        (my $b = $body) =~ s/\r\n/\n/g;
        $body = MIME::QuotedPrint::decode_qp($b);
        $body =~ s/\n/\r\n/g;
    }
    elsif ($cte eq 'base64') {
        require MIME::Base64;
        $body = MIME::Base64::decode_base64($body);
    }
    $m{body} = $body;
    return \%m;
}


# Sends raw bytes to host:port, returns (status, headers text, body); bounded
# by a 20 s timeout.
sub raw_http {
    my ($hostport, $bytes) = @_;
    require IO::Socket::INET;
    require IO::Select;
    my $sock = IO::Socket::INET->new(PeerAddr => $hostport, Timeout => 10)
        or die "connect $hostport: $!";
    binmode $sock;
    local $SIG{PIPE} = 'IGNORE';
    my $off = 0;
    while ($off < length $bytes) {
        my $n = syswrite($sock, $bytes, 65536, $off);
        last unless $n; # the server may close early (413)
        $off += $n;
    }
    shutdown($sock, 1) if $off >= length $bytes;
    my $sel = IO::Select->new($sock);
    my $resp = '';
    my $deadline = time + 20;
    while (time < $deadline && $sel->can_read(2)) {
        my $n = sysread($sock, my $buf, 65536);
        last unless $n;
        $resp .= $buf;
    }
    close $sock;
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    my ($status) = ($head // '') =~ m{^HTTP/\d\.\d (\d{3})};
    if (($head // '') =~ /^Transfer-Encoding:\s*chunked/mi) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr($body, 0, $len, '');
            $body =~ s/^\r\n//;
        }
        $body = $out;
    }
    return ($status // 0, $head // '', $body // '');
}

# ---- raw HTTP/1.1 connections: which answers came on one connection, and
# whether the server closed it (t/verify_keepalive.t, t/db_rebalance.t) ---
push @EXPORT_OK, qw(http_sock http_post http_answer http_closed http_closes);

# A connection to host:port with a read buffer; dies when it cannot connect.
sub http_sock {
    my ($hostport) = @_;
    require IO::Socket::INET;
    my $sock = IO::Socket::INET->new(PeerAddr => $hostport, Timeout => 10)
        or die "connect $hostport: $!";
    binmode $sock;
    ${*$sock}{hs_buf} = '';
    ${*$sock}{hs_hp} = $hostport;
    return $sock;
}

# One POST of a JSON body on $sock ($body: a hash or array ref, encoded
# here as UTF-8, or raw bytes). %o: proto (HTTP/1.1), headers (extra lines; with a
# Transfer-Encoding one, no Content-Length is added), sent (how many bytes
# of the body to send now: the rest is never sent). syswrite's result.
sub http_post {
    my ($sock, $path, $body, %o) = @_;
    $body = $json_bytes->encode($body) if ref $body;
    my @extra = @{ $o{headers} // [] };
    my $head = "POST $path " . ($o{proto} // 'HTTP/1.1')
        . "\r\nHost: ${*$sock}{hs_hp}\r\nContent-Type: application/json\r\n"
        . join('', map { "$_\r\n" } @extra);
    $head .= 'Content-Length: ' . length($body) . "\r\n"
        unless grep { /^Transfer-Encoding:/i } @extra;
    local $SIG{PIPE} = 'IGNORE';
    return syswrite($sock, "$head\r\n" . substr($body, 0, $o{sent} // length $body));
}

# reads more into the socket's buffer; 0 at EOF (or after $secs, default
# 10, of nothing)
sub _http_fill {
    my ($sock, $secs) = @_;
    require IO::Select;
    return 0 unless IO::Select->new($sock)->can_read($secs // 10);
    my $n = sysread($sock, my $buf, 65536);
    return 0 unless $n;
    ${*$sock}{hs_buf} .= $buf;
    return 1;
}

# One answer with a Content-Length: (status, head, body), or () when the
# connection ended first or nothing came for $secs (default 10) seconds.
sub http_answer {
    my ($sock, $secs) = @_;
    my $b = \${*$sock}{hs_buf};
    while ($$b !~ /\r\n\r\n/) { _http_fill($sock, $secs) or return () }
    my ($head) = $$b =~ /^(.*?\r\n)\r\n/s;
    my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
    $len //= 0;
    while (length($$b) < length($head) + 2 + $len) {
        _http_fill($sock, $secs) or return ();
    }
    substr($$b, 0, length($head) + 2, '');
    my $body = substr($$b, 0, $len, '');
    my ($status) = $head =~ m{^HTTP/1\.\d (\d{3})};
    return ($status, $head, $body);
}

# Did the server close the connection within 10 s? (Whatever else it sent
# is read over: httpd's own 400 page has no Content-Length.)
sub http_closed {
    my ($sock) = @_;
    require IO::Select;
    require Time::HiRes;
    my $deadline = Time::HiRes::time() + 10;
    while (Time::HiRes::time() < $deadline
           && IO::Select->new($sock)->can_read(1)) {
        my $n = sysread($sock, my $buf, 65536);
        return 1 if defined $n && $n == 0;
    }
    return 0;
}

# 1 when a head says "Connection: close"
sub http_closes { ($_[0] // '') =~ /^Connection:\s*close\r?$/mi ? 1 : 0 }

# The private PostgreSQL of the run (scripts/lib/pg.sh, as the test user).
sub _pg {
    my ($fn, @args) = @_;
    my $lib = "$ENV{HYDRA_SRC}/scripts/lib/pg.sh";
    my $cmd = ". '$lib'; $fn '$ENV{HYDRA_PG_DATA}' @args >/dev/null 2>&1";
    return system('bash', '-c', $cmd) == 0;
}
sub pg_stop  { undef $dbh; _pg('hs_pg_stop') }
sub pg_start { _pg('hs_pg_start', $ENV{HYDRA_PG_PORT}) }

# A TCP port on 127.0.0.1 that nothing listens on right now.
sub free_port {
    require IO::Socket::INET;
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, ReuseAddr => 1) or die $!;
    my $p = $s->sockport;
    close $s;
    return $p;
}

# Waits (bounded) until host:port accepts a connection; 1 when it does.
sub wait_port {
    my ($port, $secs) = @_;
    require IO::Socket::INET;
    require Time::HiRes;
    my $until = Time::HiRes::time() + ($secs // 10);
    while (Time::HiRes::time() < $until) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Timeout => 1);
        if ($s) { close $s; return 1 }
        Time::HiRes::sleep(0.1);
    }
    return 0;
}


# ---- an httpd of a test's own (t/signup_concurrency.t, t/signup_reaper.t,
# t/db_budget.t, t/plans_cache.t) ------------------------------------------
push @EXPORT_OK, qw(start_httpd stop_httpd httpd_ctl);

# httpd_ctl(DIR, SIGNAL): `httpd -f DIR/httpd.conf -k SIGNAL`; its output.
sub httpd_ctl {
    my ($dir, $signal) = @_;
    my $httpd = Apache::Test::config()->{vars}{httpd};
    return scalar `$httpd -f $dir/httpd.conf -k $signal 2>&1`;
}

# start_httpd(dir => DIR, port => PORT, ...) writes DIR/httpd.conf for an
# httpd with the suite's module, database, keys and spool, starts it and
# returns (1 when it listens on PORT within 15 s, httpd's output).
# Options: log_level (warn); mpm (MPM lines); dbd_params (added to
# HYDRA_DBD_PARAMS); dbd_keep (4), dbd_max (25), dbd_exptime (60);
# rate_limits (1: signup and verify at 100000 per 60 s; 0: none); server
# (more server-level lines); location (lines added to the one
# <Location /v1/public/signup>, which has HydraSignupTenants *);
# locations (all <Location> blocks instead of that one).
sub start_httpd {
    my (%a) = @_;
    my ($dir, $port) = @a{qw(dir port)};
    my $mods = $ENV{HYDRA_HTTPD_MODULES};
    my $st = $ENV{HYDRA_STATE};
    my $limits = ($a{rate_limits} // 1)
        ? "HydraSignupRateLimit signup 100000 60\n"
          . "HydraSignupRateLimit verify 100000 60\n"
        : '';
    my $locations = $a{locations} // "<Location /v1/public/signup>\n"
        . "    SetHandler hydra-signup\n    HydraSignupTenants *\n"
        . ($a{location} // '') . "</Location>\n";
    mkdir "$dir/logs";
    open my $c, '>', "$dir/httpd.conf" or die "$dir/httpd.conf: $!";
    print $c <<"EOT";
ServerRoot $dir
ServerName localhost
Listen 127.0.0.1:$port
PidFile $dir/httpd.pid
ErrorLog $dir/error.log
LogLevel ${\ ($a{log_level} // 'warn')}
DefaultRuntimeDir $dir/logs
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule dbd_module $mods/mod_dbd.so
LoadModule socache_shmcb_module $mods/mod_socache_shmcb.so
LoadModule hydra_signup_module $ENV{HYDRA_MODULE}
${\ ($a{mpm} // '')}
DBDriver pgsql
DBDParams "$ENV{HYDRA_DBD_PARAMS}${\ ($a{dbd_params} // '')}"
DBDPersist On
DBDMin 0
DBDKeep ${\ ($a{dbd_keep} // 4)}
DBDMax ${\ ($a{dbd_max} // 25)}
DBDExptime ${\ ($a{dbd_exptime} // 60)}
${\ ($a{server} // '')}
HydraSignupJWTKeyFile $st/jwt-hs256.key
HydraSignupCodeSecretFile $st/code.secret
HydraSignupSpoolDir $st/spool
HydraSignupMailFrom "Demo Hosting <noreply\@sites.example.net>"
$limits$locations
EOT
    close $c;
    my $out = httpd_ctl($dir, 'start');
    return (($? == 0) && wait_port($port, 15), $out);
}

# Stops the httpd of start_httpd(dir => DIR) and waits (bounded) for its
# parent process to end; kills it when it does not.
sub stop_httpd {
    my ($dir) = @_;
    return unless -e "$dir/httpd.pid";
    my $pid = do { open my $f, '<', "$dir/httpd.pid" or return; local $/; <$f> };
    chomp $pid if defined $pid;
    httpd_ctl($dir, 'stop');
    require Time::HiRes;
    my $until = Time::HiRes::time() + 10;
    Time::HiRes::sleep(0.1)
        while $pid && kill(0, $pid) && Time::HiRes::time() < $until;
    kill 'KILL', $pid if $pid && kill(0, $pid);
}

# ---- several child processes (t/abuse_ratelimit.t, t/metrics.t) ---------
push @EXPORT_OK, qw(warm_children);

# warm_children(url => URL, tag => NAME, headers => SUB): 12 clients send
# signups to URL for 2.5 s, so that the MPM (which spawns a child when its
# idle threads run short) runs more than one child; waits for the clients
# and returns the /proc/PID/stat files of the main httpd's children.
sub warm_children {
    my (%a) = @_;
    require Time::HiRes;
    my $stop = "$ENV{HYDRA_STATE}/$a{tag}-warmup.stop";
    unlink $stop;
    my $warm = start_clients(clients => 12, max => 100000, url => $a{url},
        body => sub { return {} },
        ($a{headers} ? (headers => $a{headers}) : ()),
        stop => $stop, timeout => 20);
    Time::HiRes::sleep(2.5);
    open my $sf, '>', $stop or die "$stop: $!";
    close $sf;
    wait_clients($warm, 30);
    unlink $stop;
    return child_stats(httpd_pid());
}

# child_stats(PID): the /proc/N/stat files of PID's child processes.
push @EXPORT_OK, 'child_stats';
sub child_stats {
    my ($parent) = @_;
    my @children;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $f, '<', $stat or next;
        my $s = <$f> // '';
        push @children, $stat if $s =~ /\) \S+ (\d+)/ && $1 == $parent;
    }
    return @children;
}


# The <Location> lines of a configuration that `httpd -t` accepts (the
# base that t/config.t, t/config_capacity.t and t/abuse_input.t vary).
push @EXPORT_OK, qw(good_inside);
sub good_inside {
    my $st = $ENV{HYDRA_STATE};
    return <<"EOT";
HydraSignupTenants demo
HydraSignupJWTKeyFile $st/jwt-hs256.key
HydraSignupCodeSecretFile $st/code.secret
HydraSignupSpoolDir $st/spool
HydraSignupMailFrom "Demo <noreply\@example.net>"
EOT
}

# httpd_t(dir => DIR, outside => TEXT, inside => TEXT): writes a minimal
# httpd.conf loading mod_dbd and the module, with `outside` at server level
# and `inside` in <Location /v1/public/signup>, runs `httpd -t` on it and
# returns (exit status, output).
sub httpd_t {
    my (%a) = @_;
    my $dir = $a{dir};
    my $httpd = Apache::Test::config()->{vars}{httpd};
    my $mods = $ENV{HYDRA_HTTPD_MODULES};
    my $conf = "$dir/httpd.conf";
    open my $c, '>', $conf or die "$conf: $!";
    print $c <<"EOT";
ServerRoot $dir
ServerName localhost
Listen 127.0.0.1:1
PidFile $dir/httpd.pid
ErrorLog $dir/error.log
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule dbd_module $mods/mod_dbd.so
LoadModule hydra_signup_module $ENV{HYDRA_MODULE}
DBDriver pgsql
${\ ($a{outside} // '')}
<Location /v1/public/signup>
SetHandler hydra-signup
${\ ($a{inside} // '')}
</Location>
EOT
    close $c;
    my $out = `$httpd -t -f $conf 2>&1`;
    return ($? >> 8, $out);
}

1;
