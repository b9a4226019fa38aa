-- The platform's clock for a statement: `now()`, unless the transaction or session acts at a
-- time of its own (a scheduled run sets `dynoplane.clock` to its scheduled time).
CREATE OR REPLACE FUNCTION dynoplane_clock() RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('dynoplane.clock', true), '')::timestamptz, now())
$$;--> statement-breakpoint
-- Metering: a dyno counts from the moment it is up (and meant to be) until it is not, or
-- until it is replaced by a new instance or deleted. One open row per dyno at most.
CREATE OR REPLACE FUNCTION dyno_usage_track() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  was_up boolean := false;
  is_up boolean := false;
  replaced boolean := false;
  at timestamptz := dynoplane_clock();
BEGIN
  IF TG_OP <> 'INSERT' THEN
    was_up := OLD.desired = 'up' AND OLD.state = 'up';
  END IF;
  IF TG_OP <> 'DELETE' THEN
    is_up := NEW.desired = 'up' AND NEW.state = 'up';
  END IF;
  IF TG_OP = 'UPDATE' THEN
    replaced := NEW.instance <> OLD.instance;
  END IF;
  IF was_up AND (NOT is_up OR replaced) THEN
    UPDATE dyno_usage SET ended_at = greatest(started_at, at) WHERE dyno_id = OLD.id AND ended_at IS NULL;
  END IF;
  IF is_up AND (NOT was_up OR replaced) THEN
    INSERT INTO dyno_usage (account_id, app_id, dyno_id, dyno_name, size, started_at)
    SELECT a.owner_id, NEW.app_id, NEW.id, NEW.name, NEW.size, at FROM apps a WHERE a.id = NEW.app_id
    ON CONFLICT (dyno_id) WHERE ended_at IS NULL DO NOTHING;
  END IF;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER dynos_usage AFTER INSERT OR DELETE OR UPDATE OF state, desired, instance ON dynos
  FOR EACH ROW EXECUTE FUNCTION dyno_usage_track();
--> statement-breakpoint
-- Dynos already up when metering begins count from now.
INSERT INTO dyno_usage (account_id, app_id, dyno_id, dyno_name, size, started_at)
  SELECT a.owner_id, d.app_id, d.id, d.name, d.size, now() FROM dynos d JOIN apps a ON a.id = d.app_id
  WHERE d.desired = 'up' AND d.state = 'up';
