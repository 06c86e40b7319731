"""Realtime marts: stop events, on-time performance, delivered trips, feed quality and headway adherence, per realtime feed.

Built in DuckDB from schema ``rt`` (noriba/rt.py) and the static timetable (schema ``gtfs``) of the version in service on
each service day (meta.feed_versions service_start <= day <= service_end, the newest ingested; else the newest published,
as marts.rt_match_hourly chooses). The static feed is ``rt.feeds.static_feed_id``; local times and service days are in
``rt.feeds.timezone`` (UTC when unknown). A feed's rows are replaced whole on rerun. Times are POSIX seconds (BIGINT).

The scope is the *covered* time: the UTC hours that have at least one snapshot, each from its first to its last snapshot
(header timestamp). A scheduled trip is in scope when one of its stop events is scheduled in the covered time, or when the realtime feed names it (VP or TU) on that service day. A
realtime trip without ``start_date`` is put on the service day (the local day of the fix, or the day before) whose
schedule of that trip is nearest in time.

``marts.rt_stop_events`` (one row per feed_id, service_date, trip_id, trip_start_time, stop_sequence, stop_id): route_id, direction_id,
static_feed_id, static_feed_version, scheduled_arrival, scheduled_departure; predicted_arrival, predicted_departure
(the last TripUpdate stop_time_update for the stop first seen at or before the event, i.e. the observed arrival, else the
scheduled one, carried forward: a stop no longer listed in later snapshots keeps its last prediction; its ``arrival_time`` or the scheduled time + ``arrival_delay``; no propagation from earlier stops),
predicted_at (header timestamp of that prediction); observed_arrival, observed_departure, observed_method and
observed_arrival_delay_s (observed - scheduled arrival). At a trip's first stop the observed arrival is its observed
departure (a bus waits there before it leaves; GTFS and TIDES time the origin by its departure), known once a later fix
shows it gone; at its last stop the observed departure is its observed arrival. Observed times come from vehicle positions of the trip: a fix
with status STOPPED_AT at the stop (first / last such fix), else a fix within ``radius_m`` of the stop (first / last),
else the time interpolated between the last fix before and the first fix after the vehicle passes the stop (each fix
is projected on the straight lines between consecutive stops; a fix farther than about 500 m from every one of them is
not); ``observed_method`` is stopped_at, radius or
interpolated. Fix time is the VP ``timestamp``, else the header timestamp.

Trips of frequencies.txt (exact_times 0 and 1) are expanded into runs, one every headway_secs from start_time until before
end_time, each the template's stop times moved to start at the run's start; ``trip_start_time`` (HH:MM:SS) names the run
(null for a trip without frequencies). A realtime row of such a trip is put on the run starting at its ``start_time``
(exact_times 1), else on the run whose start is nearest it (exact_times 0, where start_time is the actual start), else (no
start_time) on the run whose time span is nearest the fix; a stop_time_update takes start_time from its trip update
(same entity, the snapshot range covering it). A vehicle position without a trip_id takes the trip (and start date and
time) of the TripUpdate of the same vehicle id in the same UTC hour nearest it in time; one without either is counted in
rt_feed_quality only (``vp_no_trip_rows``; ``vp_trip_inferred_rows`` of them were attributed).

``marts.rt_on_time_performance`` (per feed_id, route_id, stop_id, hour, day_type): hour is the local hour of the
scheduled arrival, day_type is weekday, saturday or sunday_holiday (Sunday or a public holiday of the feed's country:
JP for Asia/Tokyo, US for America/*, as warehouse/trips.py; none known elsewhere);
service_days, events (scheduled), observed, early (delay < -early_s), on_time, late (delay > late_s), on_time_share
(on_time / observed; null when nothing observed), mean_delay_s, early_s, late_s (the window used: default 60 / 300).

``marts.rt_observed_trips`` (per feed_id, service_date, route_id): trips_scheduled (in scope), trips_delivered (with
at least one observed stop event or one vehicle position naming the trip), trips_with_trip_update, trips_unscheduled
(realtime trip ids not in that day's timetable), delivered_share.

``marts.rt_feed_quality`` (per feed_id, date, hour, UTC): snapshots, fetches, update_interval_mean_s /
update_interval_max_s (between consecutive distinct header timestamps, across the hour's parts), staleness_mean_s /
staleness_max_s (fetch time - header timestamp, when both are known), vp_rows (positions in snapshots), vp_trip_share
(of positions naming a trip_id), vp_no_trip_rows, vp_trip_inferred_rows (of those, attributed through their vehicle's TripUpdate), trips_scheduled (scheduled trips running in the hour: first departure <= hour end and
last arrival >= hour start), trips_with_tu, tu_coverage_share (of those with a TripUpdate in the hour).

``marts.rt_headway_adherence`` (per feed_id, service_date, route_id, direction_id, stop_id, hour) for frequent routes
(mean scheduled headway over the day at the route's stops <= ``frequent_headway_s``, default 900): scheduled_headway_s
and observed_headway_s (mean gap between consecutive arrivals at the stop in the local hour), arrivals_scheduled,
arrivals_observed, headway_ratio (observed / scheduled).
"""

from __future__ import annotations

from warehouse.txn import transaction

MARTS = ("rt_stop_events", "rt_on_time_performance", "rt_observed_trips", "rt_feed_quality", "rt_headway_adherence")

# $tz is a validated IANA name (or UTC), inlined; every other value is a ? parameter.
_SQL = r"""
CREATE OR REPLACE TEMP TABLE _hours AS
SELECT DISTINCT date, hour, epoch(date::TIMESTAMP)::BIGINT + hour * 3600 AS t0, epoch(date::TIMESTAMP)::BIGINT + hour * 3600 + 3600 AS t1
FROM rt.snapshots WHERE feed_id = $feed;

CREATE OR REPLACE TEMP TABLE _days AS
SELECT DISTINCT unnest([d0 - 1, d0, d1]) AS service_date FROM (
  SELECT (timezone('$tz', to_timestamp(t0)))::DATE AS d0, (timezone('$tz', to_timestamp(t1 - 1)))::DATE AS d1 FROM _hours
);

CREATE OR REPLACE TEMP TABLE _version AS
SELECT d.service_date, $static AS static_feed_id,
       arg_max(v.feed_version, (v.service_start IS NOT NULL AND v.service_start <= d.service_date::VARCHAR
           AND (v.service_end IS NULL OR v.service_end >= d.service_date::VARCHAR), coalesce(v.ingested_at, ''))) AS static_feed_version
FROM _days d JOIN meta.feed_versions v ON v.feed_id = $static
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _active AS
WITH base AS (
  SELECT v.service_date, v.static_feed_version, c.service_id FROM _version v JOIN gtfs.calendar c
    ON c.feed_id = v.static_feed_id AND c.feed_version = v.static_feed_version
   AND v.service_date BETWEEN c.start_date AND c.end_date
   AND [c.monday, c.tuesday, c.wednesday, c.thursday, c.friday, c.saturday, c.sunday][isodow(v.service_date)] = 1
  UNION
  SELECT v.service_date, v.static_feed_version, x.service_id FROM _version v JOIN gtfs.calendar_dates x
    ON x.feed_id = v.static_feed_id AND x.feed_version = v.static_feed_version AND x.date = v.service_date AND x.exception_type = 1
)
SELECT * FROM base b WHERE NOT EXISTS (
  SELECT 1 FROM gtfs.calendar_dates x WHERE x.feed_id = $static AND x.feed_version = b.static_feed_version
    AND x.date = b.service_date AND x.service_id = b.service_id AND x.exception_type = 2);

-- what the runs below would make: per row of frequencies.txt, its departures x its trip's stop times, a service day (checked
-- against FREQUENCY_EVENTS_BUDGET before any run is made)
CREATE OR REPLACE TEMP TABLE _freq_events AS
WITH f AS (
  SELECT v.static_feed_version, f._line, f.trip_id, f.start_time, f.end_time, f.headway_secs
  FROM (SELECT DISTINCT static_feed_id, static_feed_version FROM _version) v
  JOIN gtfs.frequencies f ON f.feed_id = v.static_feed_id AND f.feed_version = v.static_feed_version
  WHERE f.headway_secs > 0 AND f.start_time IS NOT NULL AND f.end_time > f.start_time
), n AS (
  SELECT st.feed_version AS static_feed_version, st.trip_id, count(*) AS stops
  FROM gtfs.stop_times st WHERE st.feed_id = $static AND st.trip_id IN (SELECT trip_id FROM f) GROUP BY ALL
)
SELECT f.*, (CAST(f.end_time AS BIGINT) - f.start_time + f.headway_secs - 1) // f.headway_secs * n.stops AS events
FROM f JOIN n USING (static_feed_version, trip_id);

-- trips of frequencies.txt (exact_times 0 and 1): one run every headway_secs from start_time until before end_time, each the
-- template's stop times moved to start at the run's start; a run is keyed internally as 'trip_id@HH:MM:SS' (its start)
CREATE OR REPLACE TEMP TABLE _runs AS
WITH f AS (
  SELECT DISTINCT v.static_feed_version, f.trip_id, f.start_time, f.end_time, f.headway_secs
  FROM (SELECT DISTINCT static_feed_id, static_feed_version FROM _version) v
  JOIN gtfs.frequencies f ON f.feed_id = v.static_feed_id AND f.feed_version = v.static_feed_version
  WHERE f.headway_secs > 0 AND f.start_time IS NOT NULL AND f.end_time > f.start_time
), firsts AS (
  SELECT st.feed_version AS static_feed_version, st.trip_id, min(coalesce(st.arrival_time, st.departure_time)) AS first_s
  FROM gtfs.stop_times st WHERE st.feed_id = $static AND st.trip_id IN (SELECT trip_id FROM f) GROUP BY ALL
)
SELECT static_feed_version, trip_id, run_s, run_s - first_s AS shift,
       lpad((run_s // 3600)::VARCHAR, 2, '0') || ':' || lpad((run_s // 60 % 60)::VARCHAR, 2, '0') || ':' || lpad((run_s % 60)::VARCHAR, 2, '0')
         AS trip_start_time
FROM (SELECT static_feed_version, trip_id, unnest(range(start_time, end_time, headway_secs)) AS run_s FROM f) JOIN firsts USING (static_feed_version, trip_id);

CREATE OR REPLACE TEMP TABLE _sched_all AS
WITH days AS (
  SELECT service_date, epoch(timezone('$tz', service_date::TIMESTAMP + INTERVAL 12 HOUR))::BIGINT - 43200 AS base FROM _days
)
SELECT a.service_date, a.static_feed_version, CASE WHEN r.run_s IS NULL THEN t.trip_id ELSE t.trip_id || '@' || r.trip_start_time END AS trip_id,
       t.trip_id AS gtfs_trip_id, r.trip_start_time, r.run_s, t.route_id, t.direction_id, st.stop_sequence, st.stop_id,
       d.base + coalesce(r.shift, 0) + coalesce(st.arrival_time, st.departure_time) AS scheduled_arrival,
       d.base + coalesce(r.shift, 0) + coalesce(st.departure_time, st.arrival_time) AS scheduled_departure,
       s.stop_lat, s.stop_lon
FROM _active a JOIN days d USING (service_date)
JOIN gtfs.trips t ON t.feed_id = $static AND t.feed_version = a.static_feed_version AND t.service_id = a.service_id
JOIN gtfs.stop_times st ON st.feed_id = $static AND st.feed_version = a.static_feed_version AND st.trip_id = t.trip_id
LEFT JOIN _runs r ON r.static_feed_version = a.static_feed_version AND r.trip_id = t.trip_id
LEFT JOIN gtfs.stops s ON s.feed_id = $static AND s.feed_version = a.static_feed_version AND s.stop_id = st.stop_id
WHERE coalesce(st.arrival_time, st.departure_time) IS NOT NULL;

CREATE OR REPLACE TEMP TABLE _trip_days AS
SELECT service_date, trip_id, any_value(gtfs_trip_id) AS gtfs_trip_id, any_value(run_s) AS run_s, any_value(route_id) AS route_id,
       min(scheduled_arrival) AS t_first, max(scheduled_departure) AS t_last
FROM _sched_all GROUP BY ALL;

-- a vehicle position without a trip_id gets the trip of the TripUpdate of the same vehicle id in the same hour, nearest in time
CREATE OR REPLACE TEMP TABLE _vp_inferred AS
SELECT v.date, v.hour, v.entity_id, v.header_timestamp, v.vehicle_id,
       arg_min({'trip_id': t.trip_id, 'start_date': t.start_date, 'start_time': t.start_time, 'route_id': t.route_id},
               greatest(t.header_timestamp - v.header_timestamp, v.header_timestamp - coalesce(t.last_header_timestamp, t.header_timestamp), 0))
         AS trip
FROM rt.vehicle_positions v JOIN rt.trip_updates t ON t.feed_id = v.feed_id AND t.date = v.date AND t.hour = v.hour
 AND t.vehicle_id = v.vehicle_id AND t.trip_id IS NOT NULL
WHERE v.feed_id = $feed AND v.trip_id IS NULL AND v.vehicle_id IS NOT NULL
GROUP BY ALL;

-- realtime observations of trips, put on a service day
CREATE OR REPLACE TEMP TABLE _rt_raw AS
SELECT 'vp' AS src, coalesce(v.trip_id, i.trip.trip_id) AS trip_id, CASE WHEN v.trip_id IS NULL THEN i.trip.start_date ELSE v.start_date END AS start_date,
       CASE WHEN v.trip_id IS NULL THEN i.trip.start_time ELSE v.start_time END AS start_time, coalesce(v.route_id, i.trip.route_id) AS route_id,
       coalesce(v."timestamp", v.header_timestamp) AS ts, v.latitude, v.longitude, v.stop_id,
       v.current_stop_sequence, v.current_status, v.snapshots, NULL::BIGINT AS stop_sequence, NULL::BIGINT AS arrival_time,
       NULL::INTEGER AS arrival_delay, NULL::BIGINT AS departure_time, NULL::INTEGER AS departure_delay, v.header_timestamp
FROM rt.vehicle_positions v LEFT JOIN _vp_inferred i ON v.trip_id IS NULL AND i.date = v.date AND i.hour = v.hour
 AND i.entity_id IS NOT DISTINCT FROM v.entity_id AND i.header_timestamp IS NOT DISTINCT FROM v.header_timestamp AND i.vehicle_id = v.vehicle_id
WHERE v.feed_id = $feed AND coalesce(v.trip_id, i.trip.trip_id) IS NOT NULL AND coalesce(v."timestamp", v.header_timestamp) IS NOT NULL
UNION ALL
-- a stop_time_update of a frequency-based trip takes its run's start_time from its trip update (same entity, covering snapshot)
SELECT 'stu', s.trip_id::VARCHAR, s.start_date::VARCHAR, tu.start_time, s.route_id::VARCHAR, s.header_timestamp, NULL, NULL, s.stop_id::VARCHAR,
       NULL, NULL, s.snapshots, s.stop_sequence, s.arrival_time, s.arrival_delay, s.departure_time, s.departure_delay, s.header_timestamp
FROM rt.stop_time_updates s LEFT JOIN rt.trip_updates tu ON s.trip_id::VARCHAR IN (SELECT trip_id FROM _runs)
 AND tu.feed_id = s.feed_id AND tu.date = s.date AND tu.hour = s.hour AND tu.entity_id = s.entity_id::VARCHAR
 AND tu.trip_id = s.trip_id::VARCHAR AND s.header_timestamp BETWEEN tu.header_timestamp AND coalesce(tu.last_header_timestamp, tu.header_timestamp)
WHERE s.feed_id = $feed AND s.trip_id IS NOT NULL AND s.header_timestamp IS NOT NULL
UNION ALL
SELECT 'tu', trip_id, start_date, start_time, route_id, coalesce(header_timestamp, "timestamp"), NULL, NULL, NULL, NULL, NULL, snapshots,
       NULL, NULL, NULL, NULL, NULL, header_timestamp
FROM rt.trip_updates WHERE feed_id = $feed AND trip_id IS NOT NULL AND coalesce(header_timestamp, "timestamp") IS NOT NULL;

-- each realtime row is put on a service day (its start_date, else the nearest schedule of the trip on the local day of the fix or
-- the day before) and, for a frequency-based trip, on a run: the run starting at its start_time (exact_times 1), else the
-- nearest start (exact_times 0: the start_time is the actual one), else the run whose time span is nearest the fix
CREATE OR REPLACE TEMP TABLE _rt AS
WITH r AS (SELECT row_number() OVER () AS rid, *, try_strptime(start_date, '%Y%m%d')::DATE AS sd,
                  (timezone('$tz', to_timestamp(ts)))::DATE AS local_day,
                  CASE WHEN regexp_full_match(coalesce(start_time, ''), '\d{1,2}:\d{2}:\d{2}')
                       THEN split_part(start_time, ':', 1)::INT * 3600 + split_part(start_time, ':', 2)::INT * 60 + split_part(start_time, ':', 3)::INT
                  END AS start_s
           FROM _rt_raw),
pick AS (
  SELECT r.rid, arg_min({'d': td.service_date, 'k': td.trip_id},
             CASE WHEN td.run_s IS NOT NULL AND r.start_s IS NOT NULL THEN abs(td.run_s - r.start_s)::DOUBLE * 1e12 ELSE 0 END
             + greatest(td.t_first - r.ts, r.ts - td.t_last, 0)::DOUBLE * 100000 + abs(r.ts - td.t_first)) AS p
  FROM r JOIN _trip_days td ON td.gtfs_trip_id = r.trip_id
   AND td.service_date IN (coalesce(r.sd, r.local_day), coalesce(r.sd, r.local_day - 1))
  WHERE r.sd IS NULL OR td.run_s IS NOT NULL GROUP BY r.rid
)
SELECT r.* EXCLUDE (sd, local_day, start_s, trip_id), coalesce(p.p.k, r.trip_id) AS trip_id, coalesce(r.sd, p.p.d, r.local_day) AS service_date
FROM r LEFT JOIN pick p USING (rid);

-- scheduled trips in scope
CREATE OR REPLACE TEMP TABLE _span AS  -- the covered time of each hour: its first to its last snapshot (header time)
SELECT h.t0, greatest(h.t0, coalesce(min(s.header_timestamp), h.t0)) AS c0, least(h.t1, coalesce(max(s.header_timestamp) + 1, h.t1)) AS c1
FROM _hours h LEFT JOIN rt.snapshots s ON s.feed_id = $feed AND s.date = h.date AND s.hour = h.hour GROUP BY h.date, h.hour, h.t0, h.t1;

CREATE OR REPLACE TEMP TABLE _scope AS
SELECT DISTINCT s.service_date, s.trip_id FROM _sched_all s JOIN _span h ON s.scheduled_arrival >= h.c0 AND s.scheduled_arrival < h.c1
UNION
SELECT DISTINCT r.service_date, r.trip_id FROM _rt r JOIN _trip_days td USING (service_date, trip_id);

CREATE OR REPLACE TEMP TABLE _sched AS
SELECT s.* FROM _sched_all s JOIN _scope USING (service_date, trip_id);

-- fixes projected on the trip's stop-to-stop segments (equirectangular metres)
CREATE OR REPLACE TEMP TABLE _fix AS
SELECT DISTINCT service_date, trip_id, ts, latitude, longitude, stop_id, current_stop_sequence, current_status
FROM _rt WHERE src = 'vp' AND latitude IS NOT NULL AND longitude IS NOT NULL;

CREATE OR REPLACE TEMP TABLE _seg AS
SELECT service_date, trip_id, row_number() OVER w - 1 AS k, stop_sequence, stop_lat AS lat0, stop_lon AS lon0,
       lead(stop_lat) OVER w AS lat1, lead(stop_lon) OVER w AS lon1
FROM _sched WHERE stop_lat IS NOT NULL
WINDOW w AS (PARTITION BY service_date, trip_id ORDER BY stop_sequence);

CREATE OR REPLACE TEMP TABLE _proj AS
WITH g AS (
  SELECT f.service_date, f.trip_id, f.ts, s.k, s.stop_sequence,
         (f.longitude - s.lon0) * 111320 * cos(radians(s.lat0)) AS px, (f.latitude - s.lat0) * 110540 AS py,
         coalesce((s.lon1 - s.lon0) * 111320 * cos(radians(s.lat0)), 0) AS vx, coalesce((s.lat1 - s.lat0) * 110540, 0) AS vy
  FROM _fix f JOIN _seg s USING (service_date, trip_id)
  WHERE f.latitude BETWEEN least(s.lat0, coalesce(s.lat1, s.lat0)) - 0.005 AND greatest(s.lat0, coalesce(s.lat1, s.lat0)) + 0.005
    AND f.longitude BETWEEN least(s.lon0, coalesce(s.lon1, s.lon0)) - 0.006 AND greatest(s.lon0, coalesce(s.lon1, s.lon0)) + 0.006
), t AS (
  SELECT *, CASE WHEN vx * vx + vy * vy = 0 THEN 0 ELSE greatest(0, least(1, (px * vx + py * vy) / (vx * vx + vy * vy))) END AS u FROM g
)
SELECT service_date, trip_id, ts, arg_min(k + u, (px - u * vx) ^ 2 + (py - u * vy) ^ 2) AS progress
FROM t GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _obs AS
WITH e AS (
  SELECT s.service_date, s.trip_id, s.stop_sequence, s.stop_id, s.stop_lat, s.stop_lon,
         CASE WHEN s.stop_lat IS NOT NULL THEN count(s.stop_lat) OVER (PARTITION BY s.service_date, s.trip_id ORDER BY s.stop_sequence) - 1 END AS k,
         s.stop_sequence = min(s.stop_sequence) OVER (PARTITION BY s.service_date, s.trip_id) AS is_first,
         s.stop_sequence = max(s.stop_sequence) OVER (PARTITION BY s.service_date, s.trip_id) AS is_last
  FROM _sched s
), near AS (
  SELECT e.service_date, e.trip_id, e.stop_sequence,
         min(f.ts) FILTER (f.current_status = 'STOPPED_AT' AND (f.stop_id = e.stop_id OR f.current_stop_sequence = e.stop_sequence)) AS stop_first,
         max(f.ts) FILTER (f.current_status = 'STOPPED_AT' AND (f.stop_id = e.stop_id OR f.current_stop_sequence = e.stop_sequence)) AS stop_last,
         min(f.ts) FILTER (e.stop_lat IS NOT NULL AND
             ((f.longitude - e.stop_lon) * 111320 * cos(radians(e.stop_lat))) ^ 2 + ((f.latitude - e.stop_lat) * 110540) ^ 2 <= $radius2) AS near_first,
         max(f.ts) FILTER (e.stop_lat IS NOT NULL AND
             ((f.longitude - e.stop_lon) * 111320 * cos(radians(e.stop_lat))) ^ 2 + ((f.latitude - e.stop_lat) * 110540) ^ 2 <= $radius2) AS near_last,
         max(f.ts) AS trip_last_fix
  FROM e JOIN _fix f USING (service_date, trip_id) GROUP BY ALL
), passing AS (
  SELECT e.service_date, e.trip_id, e.stop_sequence,
         arg_max(p.ts, p.ts) FILTER (p.progress < e.k) AS ts_before, arg_max(p.progress, p.ts) FILTER (p.progress < e.k) AS p_before,
         arg_min(p.ts, p.ts) FILTER (p.progress >= e.k) AS ts_after, arg_min(p.progress, p.ts) FILTER (p.progress >= e.k) AS p_after
  FROM e JOIN _proj p USING (service_date, trip_id) GROUP BY ALL
), o AS (
  SELECT e.service_date, e.trip_id, e.stop_sequence, e.is_first, e.is_last, n.stop_first, n.stop_last, n.near_first, n.near_last,
         n.trip_last_fix,
         CASE WHEN pa.ts_before IS NOT NULL AND pa.ts_after IS NOT NULL AND pa.ts_before < pa.ts_after AND pa.p_after > pa.p_before
              THEN round(pa.ts_before + (pa.ts_after - pa.ts_before) * (e.k - pa.p_before) / (pa.p_after - pa.p_before))::BIGINT END AS passed
  FROM e LEFT JOIN near n USING (service_date, trip_id, stop_sequence) LEFT JOIN passing pa USING (service_date, trip_id, stop_sequence)
), t AS (
  SELECT *, coalesce(stop_first, near_first, passed) AS arr,
         -- the departure is known once a later fix shows the vehicle gone (else it may still be waiting)
         CASE WHEN coalesce(stop_last, near_last) < trip_last_fix THEN coalesce(stop_last, near_last) ELSE passed END AS dep,
         CASE WHEN stop_first IS NOT NULL THEN 'stopped_at' WHEN near_first IS NOT NULL THEN 'radius' WHEN passed IS NOT NULL THEN 'interpolated' END AS arr_method,
         CASE WHEN coalesce(stop_last, near_last) < trip_last_fix THEN (CASE WHEN stop_last IS NOT NULL THEN 'stopped_at' ELSE 'radius' END)
              WHEN passed IS NOT NULL THEN 'interpolated' END AS dep_method
  FROM o
)
-- at its origin a vehicle waits before it leaves: the arrival is the departure (GTFS, TIDES); at its terminus the reverse
SELECT service_date, trip_id, stop_sequence,
       CASE WHEN is_first THEN dep ELSE arr END AS observed_arrival,
       CASE WHEN is_last AND NOT is_first THEN arr ELSE coalesce(dep, CASE WHEN NOT is_first THEN arr END) END AS observed_departure,
       CASE WHEN is_first THEN dep_method ELSE arr_method END AS observed_method
FROM t;

CREATE OR REPLACE TEMP TABLE _events AS
WITH ev AS (
  SELECT s.*, o.observed_arrival, o.observed_departure, o.observed_method FROM _sched s LEFT JOIN _obs o USING (service_date, trip_id, stop_sequence)
), pred AS (
  SELECT ev.service_date, ev.trip_id, ev.stop_sequence,
         arg_max(coalesce(u.arrival_time, ev.scheduled_arrival + u.arrival_delay, u.departure_time, ev.scheduled_arrival + u.departure_delay),
                 u.ts) AS predicted_arrival,
         arg_max(coalesce(u.departure_time, ev.scheduled_departure + u.departure_delay, u.arrival_time, ev.scheduled_departure + u.arrival_delay),
                 u.ts) AS predicted_departure,
         max(u.ts) AS predicted_at
  FROM ev JOIN _rt u ON u.src = 'stu' AND u.service_date = ev.service_date AND u.trip_id = ev.trip_id
   AND (u.stop_sequence = ev.stop_sequence OR (u.stop_sequence IS NULL AND u.stop_id = ev.stop_id))
   AND u.ts <= coalesce(ev.observed_arrival, ev.scheduled_arrival)
   AND (u.arrival_time IS NOT NULL OR u.arrival_delay IS NOT NULL OR u.departure_time IS NOT NULL OR u.departure_delay IS NOT NULL)
  GROUP BY ALL
)
SELECT $feed AS feed_id, ev.service_date, ev.gtfs_trip_id AS trip_id, ev.trip_start_time, ev.stop_sequence, ev.stop_id, ev.route_id, ev.direction_id,
       $static AS static_feed_id, ev.static_feed_version, ev.scheduled_arrival, ev.scheduled_departure,
       p.predicted_arrival, p.predicted_departure, p.predicted_at, ev.observed_arrival, ev.observed_departure, ev.observed_method,
       ev.observed_arrival - ev.scheduled_arrival AS observed_arrival_delay_s
FROM ev LEFT JOIN pred p USING (service_date, trip_id, stop_sequence);

CREATE OR REPLACE TEMP TABLE _otp AS
SELECT feed_id, route_id, stop_id, hour(timezone('$tz', to_timestamp(scheduled_arrival)))::INTEGER AS hour,
       CASE WHEN isodow(service_date) = 7 OR service_date IN (SELECT d FROM _holidays) THEN 'sunday_holiday'
            WHEN isodow(service_date) = 6 THEN 'saturday' ELSE 'weekday' END AS day_type,
       count(DISTINCT service_date) AS service_days, count(*) AS events, count(observed_arrival_delay_s) AS observed,
       count(*) FILTER (observed_arrival_delay_s < -$early) AS early,
       count(*) FILTER (observed_arrival_delay_s BETWEEN -$early AND $late) AS on_time,
       count(*) FILTER (observed_arrival_delay_s > $late) AS late,
       CASE WHEN count(observed_arrival_delay_s) > 0
            THEN count(*) FILTER (observed_arrival_delay_s BETWEEN -$early AND $late) / count(observed_arrival_delay_s) END AS on_time_share,
       avg(observed_arrival_delay_s) AS mean_delay_s, $early AS early_s, $late AS late_s
FROM _events GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _trips AS
WITH ev AS (SELECT *, trip_id || coalesce('@' || trip_start_time, '') AS run FROM _events),  -- a frequency-based trip's runs count each
sched AS (SELECT DISTINCT service_date, run AS trip_id, route_id FROM ev),
obs AS (SELECT DISTINCT service_date, run AS trip_id FROM ev WHERE observed_arrival IS NOT NULL
        UNION SELECT DISTINCT service_date, trip_id FROM _rt WHERE src = 'vp'),
tu AS (SELECT DISTINCT service_date, trip_id FROM _rt WHERE src IN ('tu', 'stu')),
unsched AS (SELECT r.service_date, coalesce(any_value(r.route_id), '') AS route_id, r.trip_id FROM _rt r
            WHERE NOT EXISTS (SELECT 1 FROM _trip_days td WHERE td.service_date = r.service_date AND td.trip_id = r.trip_id) GROUP BY ALL)
SELECT $feed AS feed_id, service_date, route_id, sum(scheduled)::BIGINT AS trips_scheduled, sum(delivered)::BIGINT AS trips_delivered,
       sum(with_tu)::BIGINT AS trips_with_trip_update, sum(unscheduled)::BIGINT AS trips_unscheduled,
       CASE WHEN sum(scheduled) > 0 THEN sum(delivered) / sum(scheduled) END AS delivered_share
FROM (
  SELECT s.service_date, s.route_id, 1 AS scheduled, (o.trip_id IS NOT NULL)::INT AS delivered, (t.trip_id IS NOT NULL)::INT AS with_tu,
         0 AS unscheduled
  FROM sched s LEFT JOIN obs o USING (service_date, trip_id) LEFT JOIN tu t USING (service_date, trip_id)
  UNION ALL SELECT service_date, route_id, 0, 0, 0, 1 FROM unsched
) GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _quality AS
WITH snaps AS (
  SELECT date, hour, count(*) AS snapshots FROM rt.snapshots WHERE feed_id = $feed GROUP BY ALL
), hts AS (
  SELECT date, hour, header_timestamp - lag(header_timestamp) OVER (PARTITION BY date, hour ORDER BY header_timestamp) AS gap
  FROM (SELECT DISTINCT date, hour, header_timestamp FROM rt.snapshots WHERE feed_id = $feed AND header_timestamp IS NOT NULL)
), gaps AS (SELECT date, hour, avg(gap) AS update_interval_mean_s, max(gap) AS update_interval_max_s FROM hts GROUP BY ALL),
fx AS (
  SELECT date, hour, count(*) AS fetches, avg(epoch(fetched_at) - header_timestamp) AS staleness_mean_s,
         max(epoch(fetched_at) - header_timestamp) AS staleness_max_s
  FROM rt.fetches WHERE feed_id = $feed GROUP BY ALL
), vp AS (
  SELECT v.date, v.hour, sum(v.snapshots) AS vp_rows, sum(v.snapshots) FILTER (v.trip_id IS NOT NULL) AS vp_trip_rows,
         sum(v.snapshots) FILTER (v.trip_id IS NULL) AS vp_no_trip_rows, sum(v.snapshots) FILTER (v.trip_id IS NULL AND i.vehicle_id IS NOT NULL) AS vp_inferred_rows
  FROM rt.vehicle_positions v LEFT JOIN _vp_inferred i ON v.trip_id IS NULL AND i.date = v.date AND i.hour = v.hour
   AND i.entity_id IS NOT DISTINCT FROM v.entity_id AND i.header_timestamp IS NOT DISTINCT FROM v.header_timestamp AND i.vehicle_id = v.vehicle_id
  WHERE v.feed_id = $feed GROUP BY ALL
), run AS (
  SELECT h.date, h.hour, td.service_date, td.trip_id FROM _hours h JOIN _trip_days td ON td.t_first < h.t1 AND td.t_last >= h.t0
), tu AS (
  SELECT DISTINCT h.date, h.hour, r.service_date, r.trip_id FROM _rt r JOIN _hours h ON r.ts >= h.t0 AND r.ts < h.t1
  WHERE r.src IN ('tu', 'stu')
), cov AS (
  SELECT run.date, run.hour, count(*) AS trips_scheduled, count(tu.trip_id) AS trips_with_tu
  FROM run LEFT JOIN tu USING (date, hour, service_date, trip_id) GROUP BY ALL
)
SELECT $feed AS feed_id, h.date, h.hour, coalesce(s.snapshots, 0) AS snapshots, coalesce(f.fetches, 0) AS fetches,
       g.update_interval_mean_s, g.update_interval_max_s, f.staleness_mean_s, f.staleness_max_s,
       coalesce(vp.vp_rows, 0)::BIGINT AS vp_rows,
       CASE WHEN vp.vp_rows > 0 THEN coalesce(vp.vp_trip_rows, 0) / vp.vp_rows END AS vp_trip_share,
       coalesce(vp.vp_no_trip_rows, 0)::BIGINT AS vp_no_trip_rows, coalesce(vp.vp_inferred_rows, 0)::BIGINT AS vp_trip_inferred_rows,
       coalesce(c.trips_scheduled, 0) AS trips_scheduled, coalesce(c.trips_with_tu, 0) AS trips_with_tu,
       CASE WHEN c.trips_scheduled > 0 THEN c.trips_with_tu / c.trips_scheduled END AS tu_coverage_share
FROM _hours h LEFT JOIN snaps s USING (date, hour) LEFT JOIN gaps g USING (date, hour) LEFT JOIN fx f USING (date, hour)
LEFT JOIN vp USING (date, hour) LEFT JOIN cov c USING (date, hour);

CREATE OR REPLACE TEMP TABLE _headway AS
WITH gaps AS (
  SELECT service_date, route_id, coalesce(direction_id, -1) AS direction_id, stop_id,
         hour(timezone('$tz', to_timestamp(scheduled_arrival)))::INTEGER AS hour,
         scheduled_arrival - lag(scheduled_arrival) OVER (PARTITION BY service_date, route_id, direction_id, stop_id ORDER BY scheduled_arrival) AS sgap,
         observed_arrival, observed_arrival - lag(observed_arrival) OVER (
             PARTITION BY service_date, route_id, direction_id, stop_id ORDER BY observed_arrival NULLS LAST) AS ogap
  FROM _events
), frequent AS (
  SELECT service_date, route_id FROM (
    SELECT service_date, route_id, coalesce(direction_id, -1) AS direction_id, stop_id,
           (max(scheduled_arrival) - min(scheduled_arrival)) / nullif(count(*) - 1, 0) AS h
    FROM _sched_all GROUP BY ALL
  ) GROUP BY ALL HAVING avg(h) <= $frequent
)
SELECT $feed AS feed_id, g.service_date, g.route_id, g.direction_id, g.stop_id, g.hour,
       avg(sgap) AS scheduled_headway_s, avg(ogap) FILTER (observed_arrival IS NOT NULL) AS observed_headway_s,
       count(*) AS arrivals_scheduled, count(observed_arrival) AS arrivals_observed,
       avg(ogap) FILTER (observed_arrival IS NOT NULL) / nullif(avg(sgap), 0) AS headway_ratio
FROM gaps g JOIN frequent USING (service_date, route_id) GROUP BY ALL;
"""

_TEMP = {"rt_stop_events": "_events", "rt_on_time_performance": "_otp", "rt_observed_trips": "_trips",
         "rt_feed_quality": "_quality", "rt_headway_adherence": "_headway"}


def _zone(tz: str | None) -> str:
    """Return ``tz`` when it is a known IANA time zone name, else UTC."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not tz or "'" in tz:
        return "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return tz


#: Scheduled stop times the runs of frequencies.txt may make in a service day (departures x their trip's stop times, all
#: rows of a static version): above it, the marts are not built and the row that makes most is named. A large metro is
#: ~0.3M stop times a day (13,000 trains x 20 stops); a hostile file of 1-second headways makes millions a row.
FREQUENCY_EVENTS_BUDGET = 5_000_000


def _check_frequency_events(con, feed_id: str, static: str | None) -> None:
    """Raise InputError naming the row of frequencies.txt that makes most scheduled stop times, if the rows of a static
    version make more than FREQUENCY_EVENTS_BUDGET a service day (temp table ``_freq_events``)."""
    from transforms.errors import InputError

    found = con.execute("SELECT static_feed_version, sum(events) AS total FROM _freq_events GROUP BY ALL "
                        "ORDER BY total DESC, static_feed_version LIMIT 1").fetchall()
    if not found or found[0][1] <= FREQUENCY_EVENTS_BUDGET:
        return
    ver, total = found[0]
    line, trip, start, end, hw, events = con.execute(
        "SELECT _line, trip_id, start_time, end_time, headway_secs, events FROM _freq_events WHERE static_feed_version = ? "
        "ORDER BY events DESC, _line LIMIT 1", [ver]).fetchall()[0]

    def hms(t: int) -> str:
        return f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}"

    raise InputError(
        f"realtime marts of {feed_id}: frequencies.txt of static feed {static} (version {ver}) makes {total:,} scheduled stop "
        f"times a service day, more than {FREQUENCY_EVENTS_BUDGET:,}; line {line} alone repeats trip "
        f"{trip} every {hw} s from {hms(start)} to {hms(end)} ({events:,}). Check headway_secs and the times of frequencies.txt, "
        f"correct the feed and ingest it again",
        ja=f"{feed_id} のリアルタイム集計: 静的フィード {static}（バージョン {ver}）の frequencies.txt から作られる予定停車が "
           f"1 日あたり {total:,} 件になり、上限 {FREQUENCY_EVENTS_BUDGET:,} 件を超えます。{line} 行目だけで便 {trip} を {hms(start)} から "
           f"{hms(end)} まで {hw} 秒ごとに繰り返しています（{events:,} 件）。frequencies.txt の headway_secs と時刻を確認し、"
           f"フィードを直してから取り込み直してください")


def build_rt_marts(con, feed_id: str, *, radius_m: float = 50.0, early_s: int = 60, late_s: int = 300,
                   frequent_headway_s: int = 900) -> dict[str, int]:
    """Build the five realtime marts of one feed on an open warehouse connection (its rows replaced whole, in one
    transaction); return rows per mart. The caller holds the publish lock."""
    con.execute("CREATE SCHEMA IF NOT EXISTS rt")
    con.execute("CREATE TABLE IF NOT EXISTS rt.feeds (feed_id VARCHAR, static_feed_id VARCHAR, timezone VARCHAR, published_at VARCHAR)")
    found = con.execute("SELECT static_feed_id, timezone FROM rt.feeds WHERE feed_id = ?", [feed_id]).fetchone()
    static, tz = (found or (None, None))
    values = {"$feed": (feed_id, "VARCHAR"), "$static": (static or "", "VARCHAR"), "$radius2": (float(radius_m) ** 2, "DOUBLE"),
              "$early": (int(early_s), "INTEGER"), "$late": (int(late_s), "INTEGER"), "$frequent": (int(frequent_headway_s), "INTEGER")}
    zone = _zone(tz)
    years = con.execute("SELECT min(date), max(date) FROM rt.snapshots WHERE feed_id = ?", [feed_id]).fetchone()
    from warehouse.trips import _country, holiday_dates

    days = holiday_dates(_country(None, zone), list(range(years[0].year - 1, years[1].year + 1)) if years[0] else [])
    con.execute("CREATE OR REPLACE TEMP TABLE _holidays (d DATE)")
    if days:
        con.executemany("INSERT INTO _holidays VALUES (?)", [[d] for d in days])
    sql = _SQL.replace("$tz", zone)
    for stmt in sql.split(";\n"):
        if not stmt.strip():
            continue
        args = []
        # replace each $name by ? in order of appearance, collecting its value
        out, i = [], 0
        while i < len(stmt):
            if stmt[i] == "$":
                name = next((n for n in values if stmt.startswith(n, i)), None)
                if name:
                    out.append(f"CAST(? AS {values[name][1]})")
                    args.append(values[name][0])
                    i += len(name)
                    continue
            out.append(stmt[i])
            i += 1
        con.execute("".join(out), args)
        if "TEMP TABLE _freq_events" in stmt:
            _check_frequency_events(con, feed_id, static)
    counts = {}
    with transaction(con):
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        for mart in MARTS:
            temp = _TEMP[mart]
            con.execute(f"CREATE TABLE IF NOT EXISTS marts.{mart} AS SELECT * FROM {temp} LIMIT 0")
            have = {r[0] for r in con.execute(f"DESCRIBE marts.{mart}").fetchall()}
            for name, typ, *_ in con.execute(f"DESCRIBE {temp}").fetchall():  # a column added since the mart was made
                if name not in have:
                    con.execute(f'ALTER TABLE marts.{mart} ADD COLUMN "{name}" {typ}')
            con.execute(f"DELETE FROM marts.{mart} WHERE feed_id = ?", [feed_id])
            counts[mart] = con.execute(f"INSERT INTO marts.{mart} BY NAME SELECT * FROM {temp}").fetchall()[0][0]
    return counts


def build_feed_marts(ws, feed_id: str, **params) -> dict[str, int]:
    """Build the realtime marts of one feed in the workspace's warehouse under the publish lock; return rows per mart."""
    from warehouse.publish import connect, ensure_schema, publish_lock

    with publish_lock(ws):
        con = connect(ws)
        try:
            ensure_schema(con)  # meta.feed_versions and gtfs.* exist even before any static feed is published
            return build_rt_marts(con, feed_id, **params)
        finally:
            con.close()
