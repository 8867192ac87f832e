# -----------------------------------------------------------------------------
# timevarying_reference.R -- R reference rows for neutrostats' start-stop
# (counting-process) rows with a time-updated ANC tier
# (neutrostats/cohort/timevarying.py): survival::tmerge with tdc() and event().
#
# Run from the repository root:
#     Rscript tests/reference/timevarying_reference.R
#
# Reads   tests/reference/data/timevarying_{labs,persons,deaths,diagnoses}.csv
#             raw synthetic tables (written once by tests/reference/timevarying_inputs.py,
#             committed; hand-made edge cases are ids 901-908)
#         tests/reference/data/pbc.csv            survival::pbc (weights_reference.R)
# Writes  tests/reference/data/timevarying_pbcseq.csv   survival::pbcseq: id, day, albumin
#         tests/reference/timevarying_reference.json    all reference rows
#
# R never reads neutrostats' output: from the raw tables it derives, with its
# own code, the index day (index = "first_neutropenic" of build_cohort: the
# first sample below 1800/uL, else the first sample), the follow-up of death
# and of an outcome (C92.0, 4-year window of 1461 days, death first = status
# 2, diagnosed on or before the index day = prevalent, not at risk), the
# lowest count of each day, the cut days and the expiry days; tmerge does the
# splitting and places the events. Deterministic (no random numbers).
# Packages (Debian bookworm): r-base-core r-cran-survival r-cran-jsonlite.
#
# The rules written here (the spec of neutrostats' time_varying_tiers):
#   * day = calendar day of the sample minus the index day; days < 0 ignored;
#   * several counts on one day: the lowest;
#   * the day-0 count holds from 0; a count on day d > 0 takes effect at
#     d + lag: tdc(time = d + lag) (tmerge ignores a tdc time at or after the
#     end of follow-up, so an event on a count's day keeps the earlier value);
#   * max_carry: a count on day d expires at d + max_carry when the next
#     count's cut comes later: an extra tdc(d + max_carry, NA) (tmerge with
#     options na.rm = FALSE); expired = "unknown" keeps those rows with tier
#     "unknown", expired = "censor" drops them;
#   * follow-up of length 0 (death on the index day): no rows (tmerge refuses
#     such a row); their ids are recorded.
# -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

SCRIPT_PATH <- "tests/reference/timevarying_reference.R"
OUT_JSON    <- "tests/reference/timevarying_reference.json"
DATA_DIR    <- "tests/reference/data"
REGEN_CMD   <- "Rscript tests/reference/timevarying_reference.R (from the repository root)"
if (!file.exists(SCRIPT_PATH)) stop("run this script from the repository root: ", REGEN_CMD)

DAYS_PER_YEAR <- 365.25
WINDOW_DAYS <- 1461  # floor(4 * 365.25)
NORMAL_LIMIT <- 1800
ANC_BREAKS <- c(-Inf, 1000, 1500, 1800, Inf)
ANC_TIERS <- c("moderate_severe", "mild", "subnormal", "normal")  # low to high value

rd <- function(name) read.csv(file.path(DATA_DIR, name), stringsAsFactors = FALSE)

# --- the synthetic cohort ------------------------------------------------------
labs <- rd("timevarying_labs.csv")
persons <- rd("timevarying_persons.csv")
deaths <- rd("timevarying_deaths.csv")
dx <- rd("timevarying_diagnoses.csv")

labs <- labs[order(labs$person_id, labs$sampled_at), ]  # ISO text sorts in time order
labs$sample_day <- as.Date(substr(labs$sampled_at, 1, 10))
if (anyDuplicated(labs[c("person_id", "sampled_at")])) stop("repeat sample times: not in this design")
ids <- persons$person_id
index_day <- sapply(ids, function(i) {
  l <- labs[labs$person_id == i, ]
  below <- which(l$value < NORMAL_LIMIT)
  as.numeric(l$sample_day[if (length(below)) below[1] else 1])
})
eod_day <- as.numeric(as.Date(persons$end_of_data))
death_day <- sapply(ids, function(i) {
  d <- deaths$died_at[deaths$person_id == i]
  if (length(d)) min(as.numeric(as.Date(d))) else Inf
})
# build_cohort excludes these persons; the inputs were made without them.
if (any(death_day < index_day) || any(eod_day < index_day)) stop("a person would be excluded")

counts <- data.frame(id = labs$person_id,
                     day = as.numeric(labs$sample_day) - index_day[match(labs$person_id, ids)],
                     anc = labs$value)

follow_up <- function(outcome, horizon_days = NULL) {
  died <- death_day <= eod_day
  if (outcome == "death") {
    end <- pmin(death_day, eod_day) - index_day
    status <- as.integer(died)
    keep <- rep(TRUE, length(ids))
  } else {
    hit <- dx[dx$code == "C92.0", ]
    hday <- as.numeric(as.Date(hit$diagnosed_at))
    prevalent <- sapply(seq_along(ids), function(k) any(hday[hit$person_id == ids[k]] <= index_day[k]))
    first_after <- sapply(seq_along(ids), function(k) {
      x <- hday[hit$person_id == ids[k] & hday > index_day[k]]
      if (length(x)) min(x) else Inf
    })
    win_end <- index_day + WINDOW_DAYS
    fu_end <- pmin(win_end, death_day, eod_day)
    event <- first_after <= fu_end
    status <- ifelse(event, 1L, ifelse(death_day <= pmin(win_end, eod_day), 2L, 0L))
    end <- ifelse(event, first_after, fu_end) - index_day
    keep <- !prevalent
  }
  if (!is.null(horizon_days)) {
    beyond <- end > horizon_days
    end[beyond] <- horizon_days
    status[beyond] <- 0L
  }
  data.frame(id = ids, end = end, status = status)[keep, ]
}

# Counting-process rows of one case: tmerge(event(end, status)), then tmerge(tdc(cut, value)).
split_rows <- function(fu, cnt, lag, max_carry = NULL, expired = "unknown", breaks, tiers) {
  zero <- fu$id[fu$end == 0]
  fu <- fu[fu$end > 0, ]
  cnt <- cnt[cnt$id %in% fu$id & cnt$day >= 0, ]
  low <- aggregate(value ~ id + day, data = cnt, FUN = min)       # the lowest count of each day
  low <- low[order(match(low$id, fu$id), low$day), ]
  low$cut <- ifelse(low$day == 0, 0, low$day + lag)
  changes <- low[c("id", "cut", "value")]
  if (!is.null(max_carry)) {
    nxt <- c(low$cut[-1], Inf)
    nxt[c(low$id[-1] != low$id[-nrow(low)], TRUE)] <- Inf
    exp_day <- low$day + max_carry
    ex <- exp_day < nxt
    changes <- rbind(changes, data.frame(id = low$id[ex], cut = exp_day[ex], value = NA))
    changes <- changes[order(match(changes$id, fu$id), changes$cut), ]
  }
  base <- tmerge(fu, fu, id = id, tstop = end, status = event(end, status))
  x <- tmerge(base, changes, id = id, value = tdc(cut, value), options = list(na.rm = FALSE))
  if (expired == "censor") x <- x[!is.na(x$value), ]
  x <- x[order(match(x$id, fu$id), x$tstart), ]
  tier <- as.character(cut(x$value, breaks = breaks, right = FALSE, labels = tiers))
  tier[is.na(x$value)] <- "unknown"
  list(
    n_rows = nrow(x),
    persons_without_follow_up_time = zero,
    rows = list(id = x$id, start_day = x$tstart, stop_day = x$tstop,
                start = x$tstart / DAYS_PER_YEAR, stop = x$tstop / DAYS_PER_YEAR,
                tier = tier, value = x$value, status = as.integer(x$status))
  )
}

CASES <- list(
  death_lag0 = list(outcome = "death", lag = 0),
  death_lag7 = list(outcome = "death", lag = 7),
  death_carry180_unknown = list(outcome = "death", lag = 0, max_carry = 180, expired = "unknown"),
  death_lag7_carry180_censor = list(outcome = "death", lag = 7, max_carry = 180, expired = "censor"),
  aml_lag0 = list(outcome = "aml", lag = 0),
  death_horizon2_lag30_carry365_unknown = list(outcome = "death", lag = 30, max_carry = 365, expired = "unknown",
                                               horizon = 2)
)
synthetic <- lapply(CASES, function(cs) {
  fu <- follow_up(cs$outcome, if (is.null(cs$horizon)) NULL else cs$horizon * DAYS_PER_YEAR)
  out <- split_rows(fu, data.frame(id = counts$id, day = counts$day, value = counts$anc), cs$lag, cs$max_carry,
                    if (is.null(cs$expired)) "unknown" else cs$expired, ANC_BREAKS, ANC_TIERS)
  c(list(options = cs, n_persons = nrow(fu), n_prevalent = length(ids) - nrow(fu)), out)
})

# --- survival::pbc + pbcseq (the tmerge vignette's data) ------------------------
# Death (pbc status 2) is the event (1), transplant (status 1) the competing one (2);
# the time-varying value is albumin (low is bad, as for the ANC), in three tiers.
write.csv(survival::pbcseq[c("id", "day", "albumin")], file.path(DATA_DIR, "timevarying_pbcseq.csv"),
          row.names = FALSE)
seq_ <- rd("timevarying_pbcseq.csv")
pbc <- rd("pbc.csv")
pbc <- pbc[pbc$id <= 312, ]
pbc_fu <- data.frame(id = pbc$id, end = pbc$time, status = c(0L, 2L, 1L)[pbc$status + 1])
ALB_BREAKS <- c(-Inf, 2.8, 3.5, Inf)
ALB_TIERS <- c("low", "borderline", "normal")
PBC_CASES <- list(
  pbc_lag0 = list(lag = 0),
  pbc_lag30 = list(lag = 30),
  pbc_carry400_unknown = list(lag = 0, max_carry = 400, expired = "unknown"),
  pbc_lag30_carry400_censor = list(lag = 30, max_carry = 400, expired = "censor")
)
pbc_out <- lapply(PBC_CASES, function(cs) {
  out <- split_rows(pbc_fu, data.frame(id = seq_$id, day = seq_$day, value = seq_$albumin), cs$lag, cs$max_carry,
                    if (is.null(cs$expired)) "unknown" else cs$expired, ALB_BREAKS, ALB_TIERS)
  out$rows$start <- NULL  # pbc is in days: start_day/stop_day are the reference
  out$rows$stop <- NULL
  c(list(options = cs), out)
})

header <- list(
  r_version = R.version.string,
  packages = sapply(c("survival", "jsonlite"), function(p) as.character(packageVersion(p)), simplify = FALSE),
  script = SCRIPT_PATH,
  regenerate = paste("apt-get install -y r-base-core r-cran-survival r-cran-jsonlite &&", REGEN_CMD),
  inputs = "tests/reference/data/timevarying_{labs,persons,deaths,diagnoses}.csv (timevarying_inputs.py), data/pbc.csv",
  conventions = list(
    rows = "one row per (person, interval) of tmerge, persons in the persons (pbc) order, then by tstart",
    days = "start_day/stop_day: tmerge's tstart/tstop in days since the index day (pbc: since enrolment)",
    years = "start/stop: days / 365.25 (synthetic cohort)",
    tier = "andersen2016 cuts 1000/1500/1800 per uL (pbc: albumin 2.8/3.5 g/dL), right-open; 'unknown' after expiry",
    value = "the count in force (the lowest of its day); null when unknown",
    status = "0 censored, 1 the outcome, 2 death first (pbc: 1 death, 2 transplant); on the last row",
    aml = "outcome C92.0 in (index, index + 1461 days]; diagnosed on or before the index day = prevalent (no rows)"
  )
)

write_json(list(header = header, synthetic = synthetic, pbc = pbc_out), OUT_JSON, digits = NA,
           auto_unbox = TRUE, null = "null", na = "null")
cat("wrote", OUT_JSON, "\n")
