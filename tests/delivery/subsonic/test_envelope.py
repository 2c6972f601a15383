"""The subsonic-response envelope: valid XML, Subsonic's JSON, one model for both."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from delivery.subsonic.envelope import API_VERSION, failed, ok, render, render_json, render_xml

NS = "{http://subsonic.org/restapi}"


def test_xml_envelope_has_the_attributes_clients_check():
    root = ET.fromstring(render_xml(ok()))
    assert root.tag == f"{NS}subsonic-response"
    assert root.attrib == {
        "status": "ok",
        "version": API_VERSION,
        "type": "audiocdn",
        "serverVersion": root.attrib["serverVersion"],
        "openSubsonic": "true",
    }


def test_json_envelope_mirrors_it():
    body = json.loads(render_json(ok()))["subsonic-response"]
    assert body["status"] == "ok" and body["version"] == "1.16.1"
    assert body["openSubsonic"] is True and body["type"] == "audiocdn"


def test_children_lists_and_scalar_lists():
    data = ok(
        {
            "album": {
                "id": "al.x",
                "name": 'Rock & "Roll" <live>',
                "song": [{"id": "a", "isDir": False}, {"id": "b", "year": None}],
            },
            "openSubsonicExtensions": [{"name": "formPost", "versions": [1, 2]}],
        }
    )
    root = ET.fromstring(render_xml(data))
    album = root.find(f"{NS}album")
    assert album.get("name") == 'Rock & "Roll" <live>'
    songs = album.findall(f"{NS}song")
    assert [s.get("id") for s in songs] == ["a", "b"]
    assert songs[0].get("isDir") == "false" and "year" not in songs[1].attrib
    versions = root.find(f"{NS}openSubsonicExtensions").findall(f"{NS}versions")
    assert [v.text for v in versions] == ["1", "2"]

    body = json.loads(render_json(data))["subsonic-response"]
    assert body["album"]["song"] == [{"id": "a", "isDir": False}, {"id": "b"}]
    assert body["openSubsonicExtensions"] == [{"name": "formPost", "versions": [1, 2]}]


def test_an_empty_list_is_an_empty_array_in_json_and_nothing_in_xml():
    data = ok({"searchResult3": {"song": []}})
    assert json.loads(render_json(data))["subsonic-response"]["searchResult3"] == {"song": []}
    root = ET.fromstring(render_xml(data))
    assert list(root.find(f"{NS}searchResult3")) == []


def test_control_characters_from_tags_cannot_break_the_xml():
    data = ok({"song": {"title": "bell\x07 and nul\x00 and tab\t"}})
    song = ET.fromstring(render_xml(data)).find(f"{NS}song")
    assert song.get("title") == "bell and nul and tab\t"
    assert json.loads(render_json(data))["subsonic-response"]["song"]["title"].startswith(
        "bell\x07"
    )


def test_failed_envelope_and_formats():
    body, ctype = render(failed(40, "Wrong username or password"), "json")
    assert ctype == "application/json"
    parsed = json.loads(body)["subsonic-response"]
    assert parsed["status"] == "failed"
    assert parsed["error"] == {"code": 40, "message": "Wrong username or password"}
    body, ctype = render(failed(10, "missing"), "jsonp")
    assert ctype.startswith("text/xml")
    error = ET.fromstring(body).find(f"{NS}error")
    assert error.get("code") == "10"


def test_value_is_element_text():
    data = ok({"genres": {"genre": [{"value": "Rock & Roll", "songCount": 3}]}})
    (genre,) = ET.fromstring(render_xml(data)).iter(f"{NS}genre")
    assert genre.text == "Rock & Roll" and genre.get("songCount") == "3"
    body = json.loads(render_json(data))["subsonic-response"]
    assert body["genres"]["genre"] == [{"value": "Rock & Roll", "songCount": 3}]
