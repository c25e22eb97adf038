package HydraTest;
# Shared helpers for the Apache::Test suite: the database (DBD::Pg, the
# same PostgreSQL the module uses), test tenants, JSON requests.
use strict;
use warnings FATAL => 'all';

use DBI ();
use JSON::PP ();
use Exporter 'import';
use Apache::TestRequest ();

our @EXPORT_OK = qw(dbh reset_db add_tenant post_json get_json json
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
# under the code secret (as src/signup.c stores it).
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

1;
