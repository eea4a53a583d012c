-- Form requests for bench/run.sh's wrk scripts. run.sh puts before this file:
--   COOKIE, TOKEN     a pre-login CSRF cookie header and its token (the login POST)
--   EMAILS, PASSWORD  the seeded authors (all share the password)
--   WCOOKIE, WTOKEN   a logged-in author's cookie header and CSRF token (writes)
--   READS             paths the mixed run reads
--   MODE              "login" or "mixed"

local function urlencode(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local FORM = "application/x-www-form-urlencoded"
local n = 0
-- Logins count on their own, so that in the mixed run too each thread goes round the
-- accounts in turn (quire answers 429 to a sixth login in flight on one account).
local logins = 0
-- About 2 KB in paragraphs of about 40 words, the shape of the seeded posts: the mixed
-- run's posts are the newest, so the home page measured after it (at 100,000 posts)
-- lists them, and a page of the same shape compares like with like. (One long paragraph
-- made each excerpt 2 KB and the home page two and a half times as long.)
local paragraph = "The garden journey orchard island signal mirror ribbon copper river morning "
  .. "harbour lantern meadow stone quiet winter thread window candle valley forest "
  .. "letter bridge market shadow garden engine planet silver anchor canvas pocket "
  .. "marble tunnel feather compass harvest."
local body_md = urlencode(string.rep(paragraph .. "\n\n", 7))

threads_made = 0
function setup(thread)
  threads_made = threads_made + 1
  thread:set("tid", threads_made)
end

function init(args)
  math.randomseed(os.time() + (tid or 0) * 7919)
  -- The threads start at different accounts: fewer attempts in flight per account.
  logins = (tid or 0) * 5
end

local function login()
  logins = logins + 1
  local email = EMAILS[(logins % #EMAILS) + 1]
  local body = "email=" .. urlencode(email) .. "&password=" .. urlencode(PASSWORD)
    .. "&csrf_token=" .. urlencode(TOKEN)
  return wrk.format("POST", "/login", { ["Cookie"] = COOKIE, ["Content-Type"] = FORM }, body)
end

local function write()
  n = n + 1
  local title = "Mixed run post " .. (tid or 0) .. "-" .. n .. "-" .. math.random(1, 1000000000)
  local body = "title=" .. urlencode(title) .. "&body=" .. body_md
    .. "&tags=mixed&publish=true&csrf_token=" .. urlencode(WTOKEN)
  return wrk.format("POST", "/posts", { ["Cookie"] = WCOOKIE, ["Content-Type"] = FORM }, body)
end

local function read()
  n = n + 1
  return wrk.format("GET", READS[(n % #READS) + 1])
end

if MODE == "login" then
  request = login
else
  -- 80% reads, 15% logins, 5% writes.
  request = function()
    local r = math.random(1, 100)
    if r <= 80 then return read() elseif r <= 95 then return login() else return write() end
  end
end
