-- Every deleted device is announced on a channel (logout, device deletion,
-- password change, deactivation, ruma-admin alike), so the device-list
-- tracker records the change wherever the deletion came from.
CREATE FUNCTION notify_device_deleted() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('ruma_devices_deleted', OLD.user_id);
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER device_deleted AFTER DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION notify_device_deleted();
