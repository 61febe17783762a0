-- A fan-out step finds the subscriptions of its webinar, and the
-- creator-wide ones, each by an index seek: with only (creator_id, status),
-- every step read all of a creator's subscriptions (thousands on a
-- platform), one per webinar.
CREATE INDEX subscriptions_scope ON subscriptions(creator_id, webinar_id, status);
