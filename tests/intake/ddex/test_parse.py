"""Reading ERN messages: detection, both families' structure, and hostile or unusual documents."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path

import pytest

from preserve.errors import UnsafeXML
from preserve.intake.ddex import open_delivery
from preserve.intake.ddex.detect import candidates, refusal, root_element
from preserve.intake.ddex.mapping import duration_seconds, marc_role
from preserve.intake.ddex.parse import read_message

SHA256_B64 = base64.b64encode(hashlib.sha256(b"x").digest()).decode()

# Hand-written: two discs, a PartyList, a user-defined role, a base64 SHA-256, a Deal.
ERN43 = f"""<?xml version="1.0" encoding="UTF-8"?>
<ern:NewReleaseMessage xmlns:ern="http://ddex.net/xml/ern/43" LanguageAndScriptCode="en">
  <MessageHeader>
    <MessageThreadId>T-9</MessageThreadId><MessageId>M-43-1</MessageId>
    <MessageSender><PartyId>PADPIDA2026010101S</PartyId><PartyName><FullName>North Label</FullName></PartyName></MessageSender>
    <MessageCreatedDateTime>2026-01-02T03:04:05Z</MessageCreatedDateTime>
  </MessageHeader>
  <PartyList>
    <Party><PartyReference>PA</PartyReference><PartyName><FullName>Ada Artist</FullName></PartyName></Party>
    <Party><PartyReference>PB</PartyReference><PartyName><FullName>Ben Writer</FullName></PartyName></Party>
    <Party><PartyReference>PC</PartyReference><PartyName><FullName>Cat Tech</FullName></PartyName></Party>
    <Party><PartyReference>PL</PartyReference><PartyName><FullName>North Label Ltd</FullName></PartyName></Party>
  </PartyList>
  <ResourceList>
    <SoundRecording>
      <ResourceReference>A1</ResourceReference>
      <SoundRecordingEdition>
        <ResourceId><ISRC>GBAAA2600001</ISRC></ResourceId>
        <PLine><Year>2026</Year><PLineText>North Label Ltd</PLineText></PLine>
        <TechnicalDetails><TechnicalResourceDetailsReference>T1</TechnicalResourceDetailsReference>
          <DeliveryFile><AudioCodecType>FLAC</AudioCodecType><NumberOfChannels>2</NumberOfChannels>
            <SamplingRate UnitOfMeasure="kHz">96</SamplingRate><BitsPerSample>24</BitsPerSample>
            <File><URI>audio/disc1/01.flac</URI>
              <HashSum><Algorithm>MD5</Algorithm><HashSumValue>0CC175B9C0F1B6A831C399E269772661</HashSumValue></HashSum>
              <HashSum><Algorithm>SHA256</Algorithm><DataType>Base64</DataType><HashSumValue>{SHA256_B64}</HashSumValue></HashSum>
              <HashSum><Algorithm>UserDefined</Algorithm><HashSumValue>abcd</HashSumValue></HashSum>
            </File></DeliveryFile></TechnicalDetails>
      </SoundRecordingEdition>
      <DisplayTitleText>Opening</DisplayTitleText>
      <DisplayTitle><TitleText>Opening</TitleText><SubTitle>Live</SubTitle></DisplayTitle>
      <VersionType>LiveVersion</VersionType>
      <DisplayArtistName>Ada Artist</DisplayArtistName>
      <DisplayArtist><ArtistPartyReference>PA</ArtistPartyReference><DisplayArtistRole>MainArtist</DisplayArtistRole></DisplayArtist>
      <Contributor><ContributorPartyReference>PB</ContributorPartyReference><Role>Composer</Role><Role>Lyricist</Role></Contributor>
      <Contributor><ContributorPartyReference>PC</ContributorPartyReference><Role UserDefinedValue="TapeOperator">UserDefined</Role></Contributor>
      <Duration>PT1H2M3.5S</Duration>
      <ParentalWarningType>Explicit</ParentalWarningType>
      <LanguageOfPerformance>fr</LanguageOfPerformance>
    </SoundRecording>
    <SoundRecording>
      <ResourceReference>A2</ResourceReference>
      <SoundRecordingEdition><ResourceId><ISRC>GBAAA2600002</ISRC></ResourceId>
        <TechnicalDetails><DeliveryFile><File><URI>audio/disc2/01.flac</URI></File></DeliveryFile></TechnicalDetails>
      </SoundRecordingEdition>
      <DisplayTitleText>Closing</DisplayTitleText>
    </SoundRecording>
    <Image><ResourceReference>A3</ResourceReference><Type>FrontCoverImage</Type>
      <TechnicalDetails><File><URI>art/front.jpg</URI></File></TechnicalDetails></Image>
  </ResourceList>
  <ReleaseList>
    <Release>
      <ReleaseReference>R0</ReleaseReference><ReleaseType>Album</ReleaseType>
      <ReleaseId><ICPN>5099999999999</ICPN><CatalogNumber Namespace="DPID:X">NL-7</CatalogNumber></ReleaseId>
      <DisplayTitleText>Two Sides</DisplayTitleText>
      <ReleaseLabelReference>PL</ReleaseLabelReference>
      <Genre><GenreText>Ambient</GenreText></Genre>
      <ReleaseDate>2026-02-01</ReleaseDate><OriginalReleaseDate>1999-05-05</OriginalReleaseDate>
      <ResourceGroup>
        <ResourceGroup><SequenceNumber>1</SequenceNumber>
          <ResourceGroupContentItem><SequenceNumber>1</SequenceNumber><ReleaseResourceReference>A1</ReleaseResourceReference></ResourceGroupContentItem>
        </ResourceGroup>
        <ResourceGroup><SequenceNumber>2</SequenceNumber>
          <ResourceGroupContentItem><SequenceNumber>1</SequenceNumber><ReleaseResourceReference>A2</ReleaseResourceReference></ResourceGroupContentItem>
        </ResourceGroup>
      </ResourceGroup>
    </Release>
    <TrackRelease><ReleaseReference>R1</ReleaseReference><ReleaseId><ProprietaryId Namespace="X">T1</ProprietaryId></ReleaseId></TrackRelease>
  </ReleaseList>
  <DealList><ReleaseDeal><DealReleaseReference>R0</DealReleaseReference><Deal/></ReleaseDeal></DealList>
</ern:NewReleaseMessage>
"""

# Hand-written: artists inline, facts by territory (a German block before the Worldwide one), FilePath + FileName.
ERN382 = """<?xml version="1.0" encoding="UTF-8"?>
<ern:NewReleaseMessage xmlns:ern="http://ddex.net/xml/ern/382" MessageSchemaVersionId="ern/382">
  <MessageHeader><MessageId>M-382-1</MessageId>
    <MessageSender><PartyId>PADPIDA2026010109Z</PartyId></MessageSender></MessageHeader>
  <ResourceList>
    <SoundRecording>
      <SoundRecordingId><ISRC>USAAA9900001</ISRC><ProprietaryId Namespace="DPID:X">rec-1</ProprietaryId></SoundRecordingId>
      <ResourceReference>A1</ResourceReference>
      <ReferenceTitle><TitleText>Reference Title</TitleText></ReferenceTitle>
      <Duration>PT3M20S</Duration>
      <SoundRecordingDetailsByTerritory><TerritoryCode>DE</TerritoryCode>
        <Title TitleType="DisplayTitle"><TitleText>Deutscher Titel</TitleText></Title></SoundRecordingDetailsByTerritory>
      <SoundRecordingDetailsByTerritory><TerritoryCode>Worldwide</TerritoryCode>
        <Title TitleType="FormalTitle"><TitleText>Formal</TitleText></Title>
        <Title TitleType="DisplayTitle"><TitleText>Song One</TitleText><SubTitle>Remastered</SubTitle></Title>
        <DisplayArtist><PartyId><ProprietaryId Namespace="DPID:X">artist-9</ProprietaryId></PartyId><PartyName><FullName>Dee Singer</FullName></PartyName><ArtistRole>MainArtist</ArtistRole></DisplayArtist>
        <DisplayArtist><PartyName><FullName>Eve Guest</FullName></PartyName><ArtistRole>FeaturedArtist</ArtistRole></DisplayArtist>
        <ResourceContributor><PartyName><FullName>Fay Mixer</FullName></PartyName><ResourceContributorRole>MixingEngineer</ResourceContributorRole></ResourceContributor>
        <IndirectResourceContributor><PartyName><FullName>Gus Pen</FullName></PartyName><IndirectResourceContributorRole>ComposerLyricist</IndirectResourceContributorRole></IndirectResourceContributor>
        <LabelName>Old Label</LabelName>
        <PLine><Year>1999</Year><PLineText>(P) 1999 Old Label</PLineText></PLine>
        <Genre><GenreText>Soul</GenreText></Genre>
        <ParentalWarningType>NotExplicit</ParentalWarningType>
        <TechnicalSoundRecordingDetails><TechnicalResourceDetailsReference>T1</TechnicalResourceDetailsReference>
          <AudioCodecType>PCM</AudioCodecType><NumberOfChannels>2</NumberOfChannels>
          <SamplingRate>44.1</SamplingRate><BitsPerSample>16</BitsPerSample>
          <File><FileName>A1.wav</FileName><FilePath>resources/</FilePath>
            <HashSum><HashSum>86f7e437faa5a7fce15d1ddcb9eaeaea377667b8</HashSum><HashSumAlgorithmType>SHA1</HashSumAlgorithmType></HashSum>
          </File></TechnicalSoundRecordingDetails>
      </SoundRecordingDetailsByTerritory>
    </SoundRecording>
  </ResourceList>
  <ReleaseList>
    <Release><ReleaseId><GRid>A1-2425G-ABC1234002-M</GRid></ReleaseId><ReleaseReference>R1</ReleaseReference>
      <ReferenceTitle><TitleText>A1 single</TitleText></ReferenceTitle><ReleaseType>TrackRelease</ReleaseType></Release>
    <Release IsMainRelease="true"><ReleaseId><ICPN IsEan="false">012345678905</ICPN></ReleaseId>
      <ReleaseReference>R0</ReleaseReference><ReferenceTitle><TitleText>Ref Album</TitleText></ReferenceTitle>
      <ReleaseResourceReferenceList><ReleaseResourceReference>A1</ReleaseResourceReference></ReleaseResourceReferenceList>
      <ReleaseDetailsByTerritory><TerritoryCode>Worldwide</TerritoryCode>
        <DisplayArtistName>Dee Singer</DisplayArtistName><LabelName>Old Label</LabelName>
        <Title TitleType="DisplayTitle"><TitleText>The Album</TitleText></Title>
        <ResourceGroup><ResourceGroupContentItem><SequenceNumber>4</SequenceNumber>
          <ReleaseResourceReference>A1</ReleaseResourceReference></ResourceGroupContentItem></ResourceGroup>
        <OriginalReleaseDate>1999</OriginalReleaseDate></ReleaseDetailsByTerritory>
      <CLine><Year>1999</Year><CLineText>Old Label</CLineText></CLine>
      <GlobalReleaseDate>2026-01-01</GlobalReleaseDate></Release>
  </ReleaseList>
</ern:NewReleaseMessage>
"""


def _write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def test_ern43_is_read_with_parties_discs_and_hashsums(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.xml", ERN43)
    msg = read_message(str(path), source="m.xml", version="4.3")
    assert (msg.message_id, msg.thread_id, msg.sender_party_id, msg.sender_name) == \
        ("M-43-1", "T-9", "PADPIDA2026010101S", "North Label")
    first, second = msg.recordings
    assert (first.isrc, first.title, first.subtitle, first.version) == ("GBAAA2600001", "Opening", "Live", "LiveVersion")
    assert first.artists == ["Ada Artist"] and first.display_artist == "Ada Artist"
    assert first.contributors == [("Ben Writer", "Composer"), ("Ben Writer", "Lyricist"), ("Cat Tech", "TapeOperator")]
    assert (first.p_line, first.parental_warning, first.language, first.duration) == \
        ("2026 North Label Ltd", "Explicit", "fr", "PT1H2M3.5S")
    f = first.files[0]
    assert (f.path, f.codec, f.channels, f.sample_rate, f.bit_depth, f.technical_reference) == \
        ("audio/disc1/01.flac", "FLAC", 2, 96000.0, 24, "T1")
    md5, sha, other = f.hashes
    assert (md5.hashlib_name, md5.hex) == ("md5", "0cc175b9c0f1b6a831c399e269772661")
    assert (sha.hashlib_name, sha.hex) == ("sha256", hashlib.sha256(b"x").hexdigest())     # base64 read as bytes
    assert other.hashlib_name is None
    assert second.files[0].path == "audio/disc2/01.flac" and second.files[0].hashes == ()
    assert [(o.kind, o.type, o.files[0].path) for o in msg.others] == [("Image", "FrontCoverImage", "art/front.jpg")]
    rel = msg.main_release
    assert rel is not None and (rel.reference, rel.icpn, rel.catalogue_number, rel.title, rel.label) == \
        ("R0", "5099999999999", "NL-7", "Two Sides", "North Label Ltd")
    assert (rel.genre, rel.release_date, rel.original_release_date) == ("Ambient", "2026-02-01", "1999-05-05")
    assert rel.order == {"A1": (1, 1), "A2": (2, 1)}
    assert msg.deals == 1 and [r.kind for r in msg.releases] == ["Release", "TrackRelease"]


def test_ern382_is_read_from_its_worldwide_territory(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.xml", ERN382)
    msg = read_message(str(path), source="m.xml", version="3.8.2")
    (rec,) = msg.recordings
    assert (rec.isrc, rec.title, rec.subtitle) == ("USAAA9900001", "Song One", "Remastered")
    assert rec.artists == ["Dee Singer", "Eve Guest"] and rec.display_artist == "Dee Singer, Eve Guest"
    assert rec.contributors == [("Fay Mixer", "MixingEngineer"), ("Gus Pen", "ComposerLyricist")]
    assert rec.proprietary_ids == [("DPID:X", "rec-1")]      # not the artist's party id
    assert (rec.label, rec.p_line, rec.genre, rec.parental_warning) == \
        ("Old Label", "(P) 1999 Old Label", "Soul", "NotExplicit")   # the year is in the text already
    f = rec.files[0]
    assert (f.path, f.sample_rate, f.bit_depth, f.channels) == ("resources/A1.wav", 44100.0, 16, 2)
    assert [(h.hashlib_name, h.hex) for h in f.hashes] == [("sha1", "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8")]
    rel = msg.main_release      # marked IsMainRelease, though listed second
    assert rel is not None and (rel.reference, rel.icpn, rel.title, rel.label, rel.display_artist) == \
        ("R0", "012345678905", "The Album", "Old Label", "Dee Singer")
    assert (rel.release_date, rel.original_release_date, rel.c_line) == ("2026-01-01", "1999", "1999 Old Label")
    assert rel.order == {"A1": (None, 4)} and rel.resources == ["A1"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_message_is_detected_and_read(tmp_path: Path, encoding: str) -> None:
    text = ERN382.replace('encoding="UTF-8"', 'encoding="UTF-16"').replace("Song One", "Chanson \u00e9t\u00e9 \u266b")
    bom = "\ufeff" if encoding != "utf-16" else ""
    path = _write(tmp_path, "m.xml", bom + text if encoding != "utf-16" else text, encoding)
    found = root_element(path)
    assert found is not None and (found.name, found.version) == ("NewReleaseMessage", "3.8.2")
    msg = read_message(str(path), source="m.xml", version="3.8.2")
    assert msg.recordings[0].title == "Chanson \u00e9t\u00e9 \u266b"


def test_a_utf16_message_with_entities_is_refused(tmp_path: Path) -> None:
    # a byte search for "<!ENTITY" finds nothing in UTF-16: the scan reads the declared encoding
    text = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/hostname">]>'
            '<ern:NewReleaseMessage xmlns:ern="http://ddex.net/xml/ern/43">&e;</ern:NewReleaseMessage>')
    path = _write(tmp_path, "m.xml", text, "utf-16")
    with pytest.raises(UnsafeXML, match="declares entities"):
        read_message(str(path), source="m.xml", version="4.3")


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    text = (f'<?xml version="1.0"?><!DOCTYPE NewReleaseMessage [{entities}]>'
            '<ern:NewReleaseMessage xmlns:ern="http://ddex.net/xml/ern/43"><MessageHeader><MessageId>&lol9;</MessageId>'
            "</MessageHeader></ern:NewReleaseMessage>")
    folder = tmp_path / "d"
    _write(folder, "bomb.xml", text)
    started = time.monotonic()
    lookup = open_delivery(folder, ["bomb.xml"], None)
    assert time.monotonic() - started < 2
    assert lookup.delivery is None and lookup.messages == ["bomb.xml"]
    ((code, message, rel),) = lookup.problems
    assert (code, rel) == ("unsafe-xml", "bomb.xml") and "declares entities" in message


def test_deep_nesting_is_refused_quickly(tmp_path: Path) -> None:
    depth = 100_000
    text = ('<ern:NewReleaseMessage xmlns:ern="http://ddex.net/xml/ern/43"><ResourceList>'
            + "<a>" * depth + "</a>" * depth + "</ResourceList></ern:NewReleaseMessage>")
    path = _write(tmp_path, "deep.xml", text)
    started = time.monotonic()
    with pytest.raises(UnsafeXML, match=r"not well-formed XML: .*[Ee]xcessive depth"):
        read_message(str(path), source="deep.xml", version="4.3")
    assert time.monotonic() - started < 2


def test_two_candidate_messages_are_named_both(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    _write(folder, "first.xml", ERN43)
    _write(folder, "second.xml", ERN382)
    _write(folder, "BatchComplete_2026.xml", "<BatchComplete/>")
    _write(folder, "notes.xml", "<notes/>")
    lookup = open_delivery(folder, ["BatchComplete_2026.xml", "first.xml", "notes.xml", "second.xml"], None)
    assert lookup.delivery is None and lookup.messages == ["first.xml", "second.xml"]
    ((code, message, _),) = lookup.problems
    assert code == "sheet" and "first.xml and second.xml" in message and "--sheet" in message


def test_sheet_names_one_of_two_messages(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    _write(folder, "first.xml", ERN43)
    _write(folder, "second.xml", ERN382)
    lookup = open_delivery(folder, ["first.xml", "second.xml"], "second.xml")
    assert lookup.problems == [] and lookup.delivery is not None
    assert lookup.delivery.message.version == "3.8.2" and lookup.delivery.name == "second.xml"


@pytest.mark.parametrize(("root", "expected"), [
    ('<ern:PurgeReleaseMessage xmlns:ern="http://ddex.net/xml/ern/43"/>',
     "purge.xml: a PurgeReleaseMessage (ERN 4.3); preserve packages deliveries described by a NewReleaseMessage"),
    ('<NewReleaseMessage xmlns="http://ddex.net/xml/ern/36"/>',
     "purge.xml: an ERN message in namespace http://ddex.net/xml/ern/36, a version preserve does not read"),
])
def test_unknown_message_type_or_version_is_refused_by_name(tmp_path: Path, root: str, expected: str) -> None:
    folder = tmp_path / "d"
    _write(folder, "purge.xml", '<?xml version="1.0"?>\n<!-- a comment first -->\n' + root)
    ((rel, found),) = candidates(folder, ["purge.xml"])
    lookup = open_delivery(folder, ["purge.xml"], None)
    assert lookup.delivery is None
    ((code, message, where),) = lookup.problems
    assert (code, where) == ("ddex", "purge.xml") and message.startswith(expected)
    assert refusal(rel, found) == message


def test_roles_and_durations() -> None:
    assert [marc_role(r) for r in ("Composer", "Producer", "Lyricist", "MixingEngineer")] == \
        ["cmp", "pro", "lyr", "MixingEngineer"]
    assert duration_seconds("PT3M20.5S") == 200.5
    assert duration_seconds("P0DT1H0M0S") == 3600
    assert duration_seconds("3:20") is None and duration_seconds("P") is None
