"""Files are only ever touched under MEDIA_ROOT: a stream's directory is built from a valid id and must resolve
to a direct child of MEDIA_ROOT/rtms; erasing a stream whose row holds anything else deletes no file."""

import pytest

from rtms import media, stream_content
from rtms.models import StreamSession

HOSTILE_IDS = ["../x", "..", "/etc", "%2e%2e", "a\x00b", "a" * 10_240, "x/../../y", "..\\x", ""]


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    (tmp_path / "media" / "rtms").mkdir(parents=True)
    return tmp_path / "media"


def test_a_valid_stream_id_is_a_directory_under_media_root(media_root):
    stream_id = "03db704592624398931a588dd78200cb"
    assert media.stream_dir(stream_id) == media_root.resolve() / "rtms" / stream_id


@pytest.mark.parametrize("stream_id", HOSTILE_IDS, ids=repr)
def test_traversal_ids_never_become_paths(media_root, stream_id):
    with pytest.raises(media.OutsideMediaRoot, match="rtms_stream_id"):
        media.stream_dir(stream_id)


def test_a_symlink_planted_under_media_root_is_not_followed_out(media_root, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    (media_root / "rtms" / "planted").symlink_to(outside)
    with pytest.raises(media.OutsideMediaRoot, match="resolves outside"):
        media.stream_dir("planted")


@pytest.mark.django_db
@pytest.mark.parametrize("stream_id", ["../victim", "planted"])
def test_erasing_a_stream_whose_id_leads_outside_deletes_no_file(media_root, tmp_path, stream_id):
    victim = tmp_path / "media" / "victim"  # what "../victim" names, relative to MEDIA_ROOT/rtms
    victim.mkdir()
    (victim / "keep.txt").write_text("sentinel")
    (media_root / "rtms" / "planted").symlink_to(victim)
    # A row written before ids were checked at the edge.
    stream = StreamSession.objects.create(rtms_stream_id=stream_id, meeting_uuid="m==", client_id="app")
    stream_content.erase_stream_content(stream, why="stream_revoked")
    assert (victim / "keep.txt").read_text() == "sentinel"
    stream.refresh_from_db()
    assert stream.media_deleted  # its rows are gone all the same
