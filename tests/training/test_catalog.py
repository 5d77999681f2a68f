from training.catalog import Catalog


def test_catalog_covers_150_countries_and_the_major_organisations():
    catalog = Catalog.load()
    assert sum(kind == "country" for kind in catalog.party_kinds.values()) >= 150
    for organisation in ("United Nations", "European Union", "NATO", "IAEA", "ASEAN", "African Union", "WTO"):
        assert catalog.party_kinds[organisation] == "organisation"


def test_capitals_leaders_and_institutions_stand_for_their_country():
    catalog = Catalog.load()
    text = "The Kremlin said Abe and Tokyo were wrong; Washington disagreed."
    found = {party: [text[s:e] for s, e in spans] for party, spans in catalog.detect_parties(text).items()}
    assert found["Russia"] == ["The Kremlin"]
    assert found["Japan"] == ["Abe", "Tokyo"]
    assert found["United States"] == ["Washington"]


def test_request_aliases_add_names_the_catalog_lacks():
    catalog = Catalog.load()
    text = "Minister Okonkwo rejected the plan."
    assert catalog.find_party(text, "Nigeria") == []
    assert catalog.find_party(text, "Nigeria", ["Okonkwo"]) == [(9, 16)]


def test_issues_match_leniently():
    catalog = Catalog.load()
    text = "North Korean launches worried Seoul. New tariffs on steel were imposed. Officials were sanctioned."
    assert [text[s:e] for s, e in catalog.find_issue(text, "North Korea")] == ["North Korean"]
    assert {text[s:e] for s, e in catalog.find_issue(text, "steel tariffs")} == {"tariffs", "steel"}
    assert "sanctioned" in {text[s:e] for s, e in catalog.find_issue(text, "sanctions")}
    assert "trade and tariffs" in catalog.detect_issues(text)


def test_canonical_party_resolves_aliases():
    assert Catalog.load().canonical_party("the Kremlin") == "Russia"


def test_names_resolve_in_any_case_to_the_first_party_that_lists_them():
    catalog = Catalog(parties={"Alpha": ["Capital City", "the Council"], "Beta": ["capital city"]}, party_kinds={}, issues={})
    assert catalog.canonical_party("CAPITAL CITY") == "Alpha"
    assert catalog.canonical_party("alpha") == "Alpha"
    assert catalog.canonical_party("The Council") == "Alpha"
    assert catalog.canonical_party("Gamma") == "Gamma"


def test_an_issue_is_known_by_its_name_or_any_keyword_in_any_case():
    catalog = Catalog(parties={}, party_kinds={}, issues={"trade": ["tariffs", "Export Ban"], "arms": ["tariffs"]})
    assert catalog.issue_keywords("export ban") == ["tariffs", "Export Ban"]
    assert catalog.issue_keywords(" Trade ") == ["tariffs", "Export Ban"]
    assert catalog.issue_keywords("TARIFFS") == ["tariffs", "Export Ban"]
    assert catalog.issue_keywords("fisheries") == []


def test_compiled_patterns_are_bounded_and_request_aliases_are_not_kept():
    from training.catalog import PATTERN_CACHE_SIZE

    catalog = Catalog.load()
    text = "Minister Okonkwo rejected the plan of Party 7."
    for index in range(PATTERN_CACHE_SIZE + 200):
        catalog.find_party(text, f"Party {index}")
    assert len(catalog._pattern_cache) == PATTERN_CACHE_SIZE
    assert catalog.find_party(text, "Party 7") == [(38, 45)], "an evicted pattern is compiled again"
    before = dict(catalog._pattern_cache)
    for index in range(100):
        assert catalog.find_party(text, "Nigeria", [f"Okonkwo{index}", "Okonkwo"]) == [(9, 16)]
    assert catalog._pattern_cache.keys() == before.keys()


def test_repeated_scans_of_one_text_answer_alike_whatever_a_caller_did_with_the_last_answer():
    catalog = Catalog.load()
    text = "Washington imposed an embargo. The Sanctions bite, and Pyongyang answered the EMBARGO."
    first = catalog.find_issue(text, "sanctions")
    assert {text[start:end].lower() for start, end in first} == {"embargo", "sanction", "sanctions"}
    kept = list(first)
    first.clear()  # planning extends the lists it gets; the next pair must not see that
    assert catalog.find_issue(text, "sanctions") == kept
    assert [text[start:end] for start, end in catalog.detect_issues(text)["sanctions"]] == ["embargo", "Sanction", "EMBARGO"]
    assert catalog.find_party(text, "North Korea") == [(55, 64)]
    assert "sanctions" not in catalog.detect_issues("The talks resumed in Geneva.")
