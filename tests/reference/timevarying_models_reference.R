# -----------------------------------------------------------------------------
# timevarying_models_reference.R -- R reference values for neutrostats' models on
# time-updated tiers and landmark analysis (neutrostats/stats/landmark.py).
#
# Run from the repository root:
#     Rscript tests/reference/timevarying_models_reference.R
#
# Writes  tests/reference/data/timevarying_models_labs.csv       synthetic cohort: ANC counts
#         tests/reference/data/timevarying_models_persons.csv    persons (sex, birth, end of data)
#         tests/reference/data/timevarying_models_diagnoses.csv  ICD-10 diagnoses
#         tests/reference/data/timevarying_models_deaths.csv     deaths
#         tests/reference/data/timevarying_models_tv_death.csv   start-stop rows (tmerge), death
#         tests/reference/data/timevarying_models_tv_malignancy.csv  start-stop rows, C81-C96 (death competes)
#         tests/reference/data/timevarying_models_pbcseq.csv     survival::pbc + pbcseq via tmerge
#         tests/reference/data/timevarying_models_landmarks.csv  landmark data sets
#         tests/reference/timevarying_models_reference.json      all reference numbers
#
# The four cohort tables are the input of neutrostats.build_cohort (index = first count,
# scheme andersen2016, outcomes = {"malignancy": C81-C96}, 4-year window); this script
# derives the follow-up from them itself (first count = index day; death or end of data;
# outcome window (0, 1461] days) and builds the start-stop rows with survival::tmerge and the
# landmark data sets with its own code, so nothing here is read from neutrostats.
# Every model is fitted on the data read back from the CSV files. Times are whole days in the
# CSVs; years are days / 365.25 (computed after reading). Floating-point columns of the
# landmark CSV are written with 17 significant digits (exact round trip).
# Deterministic (fixed RNG kind and seed). Packages (Debian bookworm): r-base-core
# r-cran-survival r-cran-jsonlite.
# -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

SCRIPT_PATH <- "tests/reference/timevarying_models_reference.R"
OUT_JSON    <- "tests/reference/timevarying_models_reference.json"
DATA_DIR    <- "tests/reference/data"
REGEN_CMD   <- "Rscript tests/reference/timevarying_models_reference.R (from the repository root)"
if (!file.exists(SCRIPT_PATH)) stop("run this script from the repository root: ", REGEN_CMD)
path <- function(name) file.path(DATA_DIR, paste0("timevarying_models_", name, ".csv"))

RNGkind("Mersenne-Twister", "Inversion", "Rejection")
TIERS <- c("normal", "subnormal", "mild", "moderate_severe")  # andersen2016, mildest first
DPY <- 365.25
WINDOW <- 1461L  # floor(4 * 365.25): the 4-year outcome window in days
tier_of <- function(anc) {
  # andersen2016: normal >= 1800, subnormal [1500, 1800), mild [1000, 1500), moderate_severe < 1000
  factor(TIERS[4L - findInterval(anc, c(1000, 1500, 1800))], levels = TIERS)
}

num <- function(x) {
  x <- as.numeric(x)
  out <- as.list(x)
  for (i in seq_along(x)) {
    if (is.na(x[i]) && !is.nan(x[i])) out[[i]] <- "NA"
    else if (is.nan(x[i])) out[[i]] <- "NaN"
    else if (is.infinite(x[i])) out[[i]] <- if (x[i] > 0) "Inf" else "-Inf"
  }
  if (length(out) == 1) out[[1]] else out
}
g17 <- function(x) ifelse(is.na(x), "", sprintf("%.17g", x))

# --- synthetic cohort ----------------------------------------------------------------
# 1,000 persons, index between 2005 and 2012, end of data 2016-12-31 for everyone. ANC
# counts: the index count (day 0) and Poisson(5) later counts; 10% of counts get a second
# count later the same day (the lowest of the day is in force); some counts fall exactly on
# the landmark days 182, 365, 730. Death and malignancy hazards depend on the tier in force
# (piecewise constant between count days). A few deaths are put on landmark days and the day
# after, to check the "at risk at the landmark" rule.
set.seed(20261120)
n <- 1000L
END <- as.Date("2016-12-31")
index_date <- as.Date("2005-01-01") + sample(0:2921, n, replace = TRUE)
end_day <- as.integer(END - index_date)
age <- runif(n, 20, 90)
birth <- index_date - round(age * DPY)
sex <- sample(c("F", "M"), n, replace = TRUE)
mu <- rnorm(n, log(2400), 0.35)
hr_death <- c(1, 1.3, 1.8, 3)
hr_mal <- c(1, 1.5, 3, 6)

lab_rows <- list()
death_day <- rep(NA_integer_, n)
mal_day <- rep(NA_integer_, n)
for (i in seq_len(n)) {
  k <- rpois(1, 5)
  days <- sort(unique(c(0L, sample.int(min(end_day[i], 3650L), k, replace = TRUE))))
  for (L in c(182L, 365L, 730L)) if (runif(1) < 0.05 && L <= end_day[i]) days <- sort(unique(c(days, L)))
  anc <- round(exp(mu[i] + rnorm(length(days), 0, 0.3)))
  # a few values exactly on the cut points
  on_cut <- runif(length(days)) < 0.03
  anc[on_cut] <- sample(c(1000, 1500, 1800), sum(on_cut), replace = TRUE)
  tier <- match(as.character(tier_of(anc)), TIERS)
  # piecewise-constant hazards from each count day to the next (per year)
  lin <- exp(0.03 * (age[i] - 60))
  bounds <- c(days, end_day[i])
  t_death <- NA; t_mal <- NA
  for (j in seq_along(days)) {
    a <- bounds[j]; b <- bounds[j + 1]
    if (b <= a) next
    if (is.na(t_death)) {
      u <- rexp(1, 0.04 * lin * hr_death[tier[j]] / DPY)
      if (a + u <= b) t_death <- a + u
    }
    if (is.na(t_mal)) {
      u <- rexp(1, 0.012 * hr_mal[tier[j]] / DPY)
      if (a + u <= b) t_mal <- a + u
    }
  }
  if (!is.na(t_death)) death_day[i] <- max(1L, as.integer(ceiling(t_death)))
  if (!is.na(t_mal)) mal_day[i] <- max(1L, as.integer(ceiling(t_mal)))
  hour <- sprintf("%02d:%02d", sample(7:11, length(days), replace = TRUE), sample(0:59, length(days), replace = TRUE))
  lab_rows[[i]] <- data.frame(pid = i, day = days, anc = anc, clock = hour)
  again <- runif(length(days)) < 0.10
  if (any(again)) {
    lab_rows[[i]] <- rbind(lab_rows[[i]], data.frame(
      pid = i, day = days[again], anc = round(anc[again] * exp(rnorm(sum(again), 0, 0.25))),
      clock = sprintf("%02d:%02d", sample(13:18, sum(again), replace = TRUE), sample(0:59, sum(again), replace = TRUE))))
  }
}
# deaths on and just after the landmark days (persons alive and followed beyond 800 days)
late <- which((is.na(death_day) | death_day > 800L) & end_day > 800L)
for (j in seq_along(c(182L, 183L, 365L, 366L, 730L, 731L))) {
  death_day[late[j]] <- c(182L, 183L, 365L, 366L, 730L, 731L)[j]
}
labs <- do.call(rbind, lab_rows)
# no counts after death; a diagnosis after death is not made
labs <- labs[is.na(death_day[labs$pid]) | labs$day <= death_day[labs$pid], ]
labs <- labs[order(labs$pid, labs$day, labs$clock), ]
mal_day[!is.na(mal_day) & !is.na(death_day) & mal_day > death_day] <- NA

# diagnoses: the malignancy (C81-C96 codes), 3% prevalent ones (before index), other codes
codes_mal <- c("C92.0", "C83.3", "C90.0", "c911", "D46.9")  # D46 is not in C81-C96
dx <- data.frame(pid = integer(0), day = integer(0), code = character(0))
has <- which(!is.na(mal_day))
dx <- rbind(dx, data.frame(pid = has, day = mal_day[has], code = sample(codes_mal[1:4], length(has), replace = TRUE)))
prev <- sample(seq_len(n), 30)
dx <- rbind(dx, data.frame(pid = prev, day = -sample(1:2000, 30, replace = TRUE), code = "C81.1"))
other <- sample(seq_len(n), 200)
odays <- sample(1:3000, 200, replace = TRUE)
ok <- odays <= ifelse(is.na(death_day[other]), end_day[other], death_day[other])
dx <- rbind(dx, data.frame(pid = other[ok], day = odays[ok], code = sample(c("I10", "D46.9", "J18.9"), sum(ok), replace = TRUE)))
dx <- dx[order(dx$pid, dx$day), ]

write.csv(data.frame(person_id = labs$pid, sampled_at = paste(format(index_date[labs$pid] + labs$day), labs$clock),
                     value = sprintf("%d", as.integer(labs$anc)), unit = "cells/uL"),
          path("labs"), row.names = FALSE)
write.csv(data.frame(person_id = seq_len(n), sex = sex, birth_date = format(birth), end_of_data = format(END)),
          path("persons"), row.names = FALSE)
write.csv(data.frame(person_id = dx$pid, diagnosed_at = format(index_date[dx$pid] + dx$day), code = dx$code),
          path("diagnoses"), row.names = FALSE)
dd <- which(!is.na(death_day))
write.csv(data.frame(person_id = dd, died_at = format(index_date[dd] + death_day[dd])), path("deaths"), row.names = FALSE)

# --- read back and derive the cohort (as build_cohort defines it) ----------------------
labs <- read.csv(path("labs"), colClasses = c("integer", "character", "character", "character"))
persons <- read.csv(path("persons"), colClasses = "character")
diag <- read.csv(path("diagnoses"), colClasses = c("integer", "character", "character"))
deaths <- read.csv(path("deaths"), colClasses = c("integer", "character"))
labs$date <- as.Date(substr(labs$sampled_at, 1, 10))
labs$anc <- as.numeric(labs$value)
labs <- labs[order(labs$person_id, labs$sampled_at), ]
idx <- tapply(as.integer(labs$date), labs$person_id, min)   # index day: the first count
base <- data.frame(id = as.integer(persons$person_id), sex = persons$sex)
base$index <- as.Date(idx[as.character(base$id)], origin = "1970-01-01")
base$age <- as.numeric(base$index - as.Date(persons$birth_date)) / DPY
base$end <- as.integer(as.Date(persons$end_of_data) - base$index)
base$death_day <- as.integer(as.Date(deaths$died_at)[match(base$id, deaths$person_id)] - base$index)
base$died <- as.integer(!is.na(base$death_day) & base$death_day <= base$end)
base$fu_day <- ifelse(base$died == 1L, base$death_day, base$end)
# malignancy: first C81-C96 diagnosis after the index day, within the window and follow-up
cat3 <- toupper(substr(gsub("[^A-Za-z0-9]", "", diag$code), 1, 3))
is_mal <- substr(cat3, 1, 1) == "C" & as.integer(substr(cat3, 2, 3)) >= 81 & as.integer(substr(cat3, 2, 3)) <= 96
is_mal[is.na(is_mal)] <- FALSE
dm <- diag[is_mal, ]
dm$day <- as.integer(as.Date(dm$diagnosed_at) - base$index[match(dm$person_id, base$id)])
base$mal_prevalent <- base$id %in% dm$person_id[dm$day <= 0]
after <- dm[dm$day > 0, ]
first_after <- tapply(after$day, after$person_id, min)
base$mal_first <- as.integer(first_after[as.character(base$id)])
fu_end <- pmin(WINDOW, ifelse(is.na(base$death_day), .Machine$integer.max, base$death_day), base$end)
mal_event <- !is.na(base$mal_first) & base$mal_first <= fu_end
death_first <- !is.na(base$death_day) & base$death_day <= pmin(WINDOW, base$end)
base$mal_status <- ifelse(mal_event, 1L, ifelse(death_first, 2L, 0L))
base$mal_day <- ifelse(mal_event, base$mal_first, fu_end)

# daily counts: the lowest count of each day is the one in force
labs$day <- as.integer(labs$date - base$index[match(labs$person_id, base$id)])
daily <- aggregate(anc ~ person_id + day, data = labs, FUN = min)
daily <- daily[order(daily$person_id, daily$day), ]
names(daily)[1] <- "id"

# --- start-stop rows with tmerge ----------------------------------------------------
tv_rows <- function(b, stop, status) {
  b$stop_ <- stop
  b$status_ <- status
  tv <- tmerge(b[, c("id", "age", "sex")], b, id = id, ev = event(stop_, status_))
  tv <- tmerge(tv, daily, id = id, anc = tdc(day, anc))
  tv$tier <- tier_of(tv$anc)
  tv
}
tv_death <- tv_rows(base, base$fu_day, base$died)
tv_death <- data.frame(id = tv_death$id, tstart = tv_death$tstart, tstop = tv_death$tstop, anc = tv_death$anc,
                       tier = tv_death$tier, event = tv_death$ev, age = g17(tv_death$age), sex = tv_death$sex)
write.csv(tv_death, path("tv_death"), row.names = FALSE)
bm <- base[!base$mal_prevalent, ]
tv_mal <- tv_rows(bm, bm$mal_day, bm$mal_status)
tv_mal <- data.frame(id = tv_mal$id, tstart = tv_mal$tstart, tstop = tv_mal$tstop, anc = tv_mal$anc,
                     tier = tv_mal$tier, status = tv_mal$ev, age = g17(tv_mal$age), sex = tv_mal$sex)
write.csv(tv_mal, path("tv_malignancy"), row.names = FALSE)

# pbc + pbcseq, the survival vignette's tmerge example ("Using time dependent covariates"),
# with the bilirubin (mg/dl) of the latest visit as an ordered "tier" <1, [1,2), [2,4), >=4.
BILI <- c("lt1", "1to2", "2to4", "ge4")
temp <- subset(survival::pbc, id <= 312, select = c(id, time, status, age, sex))
pbc2 <- tmerge(temp[, c("id", "age", "sex")], temp, id = id, death = event(time, status == 2),
               endpt = event(time, status))
pbc2 <- tmerge(pbc2, survival::pbcseq, id = id, bili = tdc(day, bili))
pbc2$tier <- BILI[findInterval(pbc2$bili, c(1, 2, 4)) + 1L]
# endpt: 0 censored, 1 transplant, 2 death -> status 1 death, 2 transplant (competing)
pbc2$status <- c(0L, 2L, 1L)[pbc2$endpt + 1L]
write.csv(data.frame(id = pbc2$id, tstart = pbc2$tstart, tstop = pbc2$tstop, bili = pbc2$bili, tier = pbc2$tier,
                     event = as.integer(pbc2$death), status = pbc2$status, age = g17(pbc2$age), sex = pbc2$sex),
          path("pbcseq"), row.names = FALSE)

# --- landmark data sets ---------------------------------------------------------------
# At landmark `at` (years) the landmark day is floor(at * 365.25 + 1e-9); a person is at risk
# when follow-up ends after that day; the tier is that of the lowest count of the latest day
# with counts on or before it ("unknown" when that day is more than max_carry days before);
# time = stop / 365.25 - at, capped at `horizon` (status 0 beyond it).
landmarks <- function(design, b, stop, status, at, horizon = NA, max_carry = NA) {
  out <- list()
  for (s in at) {
    L <- floor(s * DPY + 1e-9)
    r <- b[stop > L, ]
    st <- stop[stop > L]; ss <- status[stop > L]
    known <- daily[daily$day <= L & daily$id %in% r$id, ]
    last <- known[!duplicated(known$id, fromLast = TRUE), ]   # daily is sorted by id, day
    m <- match(r$id, last$id)
    anc <- last$anc[m]; cday <- last$day[m]
    tier <- as.character(tier_of(anc))
    if (!is.na(max_carry)) {
      gone <- L - cday > max_carry
      tier[gone] <- "unknown"; anc[gone] <- NA; cday[gone] <- NA
    }
    time <- st / DPY - s
    if (!is.na(horizon)) {
      beyond <- time > horizon
      time[beyond] <- horizon; ss[beyond] <- 0L
    }
    out[[length(out) + 1]] <- data.frame(design = design, landmark = s, id = r$id, tier = tier, anc = anc,
                                         count_day = cday, stop_day = st, time = g17(time), status = ss,
                                         age = g17(r$age), sex = r$sex)
  }
  do.call(rbind, out)
}
LM_AT <- c(0.5, 1, 2)
lm_all <- rbind(
  landmarks("death", base, base$fu_day, base$died, LM_AT),
  landmarks("malignancy_h2_carry365", bm, bm$mal_day, bm$mal_status, LM_AT, horizon = 2, max_carry = 365)
)
write.csv(lm_all, path("landmarks"), row.names = FALSE, na = "")

# --- read back ------------------------------------------------------------------------
rd <- function(name, levels) {
  d <- read.csv(path(name), na.strings = "")
  d$tier <- factor(d$tier, levels = levels)
  for (v in intersect(c("tstart", "tstop"), names(d))) d[[paste0(v, "_y")]] <- d[[v]] / DPY
  d
}
tvd <- rd("tv_death", TIERS)
tvm <- rd("tv_malignancy", TIERS)
pbs <- rd("pbcseq", BILI)
pbs$sex <- factor(pbs$sex)
lmd <- rd("landmarks", c(TIERS, "unknown"))
lmd$sex <- factor(lmd$sex)
tvd$sex <- factor(tvd$sex); tvm$sex <- factor(tvm$sex)

# spells: consecutive rows of a person in the same tier merged into one (start of the first,
# stop and status of the last). Curves by current tier are the same on rows or spells.
spells <- function(d, status) {
  n <- nrow(d)
  new <- c(TRUE, d$id[-1] != d$id[-n] | d$tier[-1] != d$tier[-n] | d$tstart[-1] != d$tstop[-n])
  sp <- cumsum(new)
  first <- which(new); lastr <- c(first[-1] - 1L, n)
  data.frame(id = d$id[first], spell = seq_along(first), tier = d$tier[first], tstart = d$tstart[first],
             tstop = d$tstop[lastr], status = d[[status]][lastr])
}

# --- models -----------------------------------------------------------------------------
cox_terms <- function(fit) {
  s <- summary(fit)
  cf <- s$coefficients; ci <- s$conf.int
  se_col <- if ("robust se" %in% colnames(cf)) "robust se" else "se(coef)"
  out <- list()
  for (nm in rownames(cf)) {
    out[[nm]] <- list(estimate = num(cf[nm, "coef"]), hazard_ratio = num(cf[nm, "exp(coef)"]),
                      std_error = num(cf[nm, se_col]), naive_std_error = num(cf[nm, "se(coef)"]),
                      p_value = num(cf[nm, "Pr(>|z|)"]), conf_low = num(ci[nm, "lower .95"]),
                      conf_high = num(ci[nm, "upper .95"]))
  }
  list(coef_names = rownames(cf), terms = out, n = fit$n, nevent = fit$nevent)
}
cox_case <- function(formula, data, ties, csv, note = "") {
  fit <- coxph(formula, data = data, ties = ties)
  c(list(formula = paste(deparse(formula), collapse = " "), ties = ties, csv = csv, note = note), cox_terms(fit))
}
km_case <- function(sp, time_scale, csv) {
  sp$t0 <- sp$tstart / time_scale; sp$t1 <- sp$tstop / time_scale
  fit <- survfit(Surv(t0, t1, status == 1) ~ tier, data = sp, conf.type = "log-log")
  s <- summary(fit, censored = TRUE)
  list(csv = csv, time_scale = time_scale, conf_type = "log-log",
       call = "survfit(Surv(tstart, tstop, status == 1) ~ tier, data = spells, conf.type = 'log-log') (no id)",
       group = sub("^tier=", "", as.character(s$strata)), time = num(s$time), n_risk = num(s$n.risk),
       n_event = num(s$n.event), n_censor = num(s$n.censor), estimate = num(s$surv), std_error = num(s$std.err),
       conf_low = num(s$lower), conf_high = num(s$upper))
}
aj_case <- function(sp, time_scale, csv) {
  sp$t0 <- sp$tstart / time_scale; sp$t1 <- sp$tstop / time_scale
  sp$st <- factor(sp$status, levels = 0:2, labels = c("censor", "outcome", "competing"))
  fit <- survfit(Surv(t0, t1, st) ~ tier, data = sp, id = spell)
  s <- summary(fit, censored = TRUE)
  j <- match("outcome", fit$states); k <- match("competing", fit$states)
  list(csv = csv, time_scale = time_scale,
       call = "survfit(Surv(tstart, tstop, factor(status)) ~ tier, data = spells, id = spell)",
       group = sub("^tier=", "", as.character(s$strata)), time = num(s$time),
       n_risk = num(s$n.risk[, 1]), estimate = num(s$pstate[, j]), std_error = num(s$std.err[, j]),
       conf_low = num(s$lower[, j]), conf_high = num(s$upper[, j]),
       n_event = num(s$n.event[, j]), n_competing = num(s$n.event[, k]), n_censor = num(s$n.censor))
}

TVD <- "tests/reference/data/timevarying_models_tv_death.csv"
TVM <- "tests/reference/data/timevarying_models_tv_malignancy.csv"
PBS <- "tests/reference/data/timevarying_models_pbcseq.csv"
LMS <- "tests/reference/data/timevarying_models_landmarks.csv"

sp_d <- spells(tvd, "event"); sp_m <- spells(tvm, "status")
sp_pd <- spells(pbs, "event"); sp_pa <- spells(pbs, "status")
# the curves on the rows themselves: the same estimates at every event time
chk <- function(rows, sp, status) {
  rows$ev_ <- rows[[status]] == 1
  a <- survfit(Surv(tstart, tstop, ev_) ~ tier, data = rows)
  b <- survfit(Surv(tstart, tstop, status == 1) ~ tier, data = sp)
  sa <- summary(a); sb <- summary(b)
  stopifnot(isTRUE(all.equal(sa$surv, sb$surv, tolerance = 1e-13)), isTRUE(all.equal(sa$std.err, sb$std.err)))
}
chk(tvd, sp_d, "event"); chk(pbs, sp_pd, "event")

timevarying <- list(
  cox = list(
    synthetic_death_efron = cox_case(Surv(tstart_y, tstop_y, event) ~ tier + age + sex + cluster(id), tvd, "efron", TVD),
    synthetic_death_breslow = cox_case(Surv(tstart_y, tstop_y, event) ~ tier + age + sex + cluster(id), tvd, "breslow", TVD),
    synthetic_malignancy_efron = cox_case(Surv(tstart_y, tstop_y, status == 1) ~ tier + age + cluster(id), tvm, "efron", TVM,
                                          note = "cause-specific: death without the outcome (status 2) censors"),
    pbcseq_efron = cox_case(Surv(tstart, tstop, event) ~ tier + age + sex + cluster(id), pbs, "efron", PBS),
    pbcseq_breslow = cox_case(Surv(tstart, tstop, event) ~ tier + age + cluster(id), pbs, "breslow", PBS)
  ),
  km = list(synthetic_death = km_case(sp_d, DPY, TVD), pbcseq_death = km_case(sp_pd, 1, PBS)),
  aj = list(synthetic_malignancy = aj_case(sp_m, DPY, TVM), pbcseq_death_transplant = aj_case(sp_pa, 1, PBS))
)

lm_death <- lmd[lmd$design == "death", ]
lm_death$tier <- factor(as.character(lm_death$tier), levels = TIERS)  # no "unknown" in this design
landmark <- list(
  csv = LMS,
  per_landmark = lapply(setNames(LM_AT, format(LM_AT)), function(s) {
    d <- lm_death[lm_death$landmark == s, ]
    cox_case(Surv(time, status == 1) ~ tier + age + sex, d, "efron", LMS, note = paste("design death, landmark", s))
  }),
  pooled_efron = cox_case(Surv(time, status == 1) ~ tier + age + sex + strata(landmark) + cluster(id), lm_death,
                          "efron", LMS, note = "design death, landmarks 0.5, 1, 2 stacked"),
  pooled_breslow = cox_case(Surv(time, status == 1) ~ tier + age + sex + strata(landmark) + cluster(id), lm_death,
                            "breslow", LMS, note = "design death, landmarks 0.5, 1, 2 stacked"),
  counts = lapply(split(lmd, lmd$design), function(d) list(
    landmark = num(sort(unique(d$landmark))),
    n_at_risk = as.integer(table(d$landmark)),
    n_unknown = as.integer(tapply(d$tier == "unknown", d$landmark, sum))))
)
landmark$counts$death$n_persons <- nrow(base)
landmark$counts$malignancy_h2_carry365$n_persons <- sum(!base$mal_prevalent)

header <- list(
  r_version = R.version.string,
  packages = sapply(c("survival", "jsonlite"), function(p) as.character(packageVersion(p)), simplify = FALSE),
  script = SCRIPT_PATH,
  regenerate = paste("apt-get install -y r-base-core r-cran-survival r-cran-jsonlite &&", REGEN_CMD),
  rng = "RNGkind('Mersenne-Twister', 'Inversion', 'Rejection'); set.seed(20261120)",
  non_finite_encoding = "non-finite numbers are the strings \"Inf\", \"-Inf\", \"NaN\", \"NA\"",
  conventions = list(
    tmerge = "tmerge(base, base, id = id, ev = event(stop, status)); tmerge(., daily, id = id, anc = tdc(day, anc)); daily = lowest count of each (person, day); tier from anc (andersen2016)",
    spells = "consecutive rows of a person in one tier merged (start of the first, stop and status of the last)",
    cox = "summary(coxph(..., cluster(id))): std_error = robust se, naive_std_error = se(coef); conf.int and p from the robust se",
    km = "summary(survfit(Surv(tstart, tstop, status == 1) ~ tier, spells, conf.type = 'log-log'), censored = TRUE), no id",
    aj = "survfit(Surv(tstart, tstop, factor(status)) ~ tier, spells, id = spell): R refuses start-stop multi-state data without id ('an id statement is required for start,stop data'); with id = spell each spell is its own subject starting in the initial state (the infinitesimal-jackknife SE then treats spells as independent). id = person is not the estimator by current tier: survfitCI first joins each subject's adjacent rows that end without an event, across curves, into one row carrying the later row's group (it assumes the grouping is fixed per subject)",
    landmark = "landmark day floor(at * 365.25 + 1e-9); at risk when the follow-up end day > it; tier of the lowest count of the latest count day <= it (unknown when older than max_carry days); time = stop_day / 365.25 - at, capped at horizon (status 0 beyond)",
    years = "tstart_y = tstart / 365.25 etc. after reading the CSV (pbcseq: days)"
  )
)
write_json(list(header = header, timevarying = timevarying, landmark = landmark), OUT_JSON, digits = NA,
           auto_unbox = TRUE, pretty = FALSE)
cat("wrote", OUT_JSON, "\n")
