# SPDX-License-Identifier: Apache-2.0
# The whole mission end to end, every part real: a signup through httpd and
# the module, the message queued in the spool, delivered by the real
# hydra-signup-mailer to a real SMTP server, the code read from the received
# mail, verified through httpd, and the tokens checked by Crypt::JWT.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp have_module);
use Apache::TestUtil qw(t_cmp);
use Crypt::JWT qw(decode_jwt);
use File::Temp qw(tempdir);
use MIME::QuotedPrint qw(decode_qp);
use Time::HiRes qw(time sleep);
use lib 't/lib', 'tests/mailer/lib';
use HydraTest qw(dbh reset_db add_tenant post_json get_json);
use MailerTest qw(start_sink stop_proc start_mailer kill_all);

plan tests => 16, have_lwp;

reset_db();
my $tenant = add_tenant(slug => 'acme', nodes => [[5, 0]]);
my $dir = tempdir(CLEANUP => 1);
my $sink = start_sink($dir);
my $mailer = start_mailer(Apache::Test::vars("t_logs") . "/mailer.log", '--spool', "$ENV{HYDRA_STATE}/spool",
    '--smtp', "smtp://127.0.0.1:$sink->{port}", '--starttls', 'off',
    '--from', 'bounce@hydra.test');

my $email = 'Founder@Ünicode-Widgets.example.com';
my $res = post_json('/v1/public/signup',
    { company_name => 'Ünicode Widgets GmbH', email => $email,
      tenant_slug => 'acme', plan => 'starter' });
ok t_cmp($res->code, 201, 'signup: 201');
my $signup = get_json($res);
ok t_cmp($signup->{site_url}, 'https://unicode-widgets-gmbh.acme.example.net',
         'site_url from the company name');

# the sender delivers within about a second; wait at most 15
my ($file, $deadline) = (undef, time + 15);
while (time < $deadline) {
    ($file) = glob "$sink->{maildir}/*";
    last if $file;
    sleep 0.1;
}
ok defined $file;   # the message reached the SMTP server
my $raw = '';
if ($file && open my $fh, '<', $file) { local $/; $raw = <$fh> }
my ($head, $body) = split /\r\n\r\n/, $raw, 2;
$head //= '';
$body //= '';
ok t_cmp(scalar(() = $raw =~ /(?<!\r)\n/g), 0, 'CRLF line ends only');
ok $head =~ /^To: \S+\@/m;
ok $head =~ /^Subject: =\?UTF-8\?/m;   # non-ASCII subject, RFC 2047
ok $head =~ /^Message-ID: <[^>]+>\r?$/m;
my @codes = decode_qp($body) =~ /^(\d{6})\r?$/mg;
ok t_cmp(scalar @codes, 1, 'one code, on a line of its own');
my $code = $codes[0] // '000000';

# the message left the spool once delivered (the sender unlinks it after
# the 250, a moment after the sink stored it: wait a little)
my @left;
for (my $until = time + 5; ; sleep 0.05) {
    @left = glob "$ENV{HYDRA_STATE}/spool/new/* $ENV{HYDRA_STATE}/spool/cur/*";
    last if !@left || time > $until;
}
ok t_cmp(scalar @left, 0, 'spool drained');

$res = post_json('/v1/public/signup/verify',
    { code => $code, email => lc($email), tenant_slug => 'acme' });
ok t_cmp($res->code, 200, 'verify with the mailed code: 200');
my $tok = get_json($res) // {};

open my $kf, '<', "$ENV{HYDRA_STATE}/jwt-hs256.key" or die;
my $secret = do { local $/; <$kf> };
$secret =~ s/\r?\n\z//;
my $claims = eval {
    decode_jwt(token => $tok->{access_token}, key => $secret,
               accepted_alg => 'HS256', verify_exp => 1,
               verify_iss => 'hydracore', verify_aud => 'hydracore-portal')
};
ok t_cmp($claims && $claims->{sub}, $signup->{customer_id},
         'Crypt::JWT verifies the access token; sub is the customer');
ok t_cmp($claims && $claims->{tenant_id}, $tenant, 'tenant_id claim');
ok t_cmp($claims && $claims->{type}, 'access', 'type claim');
my $rclaims = eval {
    decode_jwt(token => $tok->{refresh_token}, key => $secret,
               accepted_alg => 'HS256')
};
ok t_cmp($rclaims && $rclaims->{type}, 'refresh', 'refresh token verifies');

my ($status) = dbh()->selectrow_array(
    "SELECT status FROM customers WHERE id = ?", undef, $signup->{customer_id});
ok t_cmp($status, 'active', 'customer active');
my ($stored) = dbh()->selectrow_array(
    "SELECT count(*) FROM hydra_signup_refresh_tokens WHERE customer_id = ?",
    undef, $signup->{customer_id});
ok t_cmp($stored, 1, 'refresh jti recorded');

stop_proc($mailer);
stop_proc($sink->{pid});
kill_all();
