"""Keywords taken from the ISO 18245 merchant-category descriptions, per expense category.

Source: the official ISO 18245 code list shipped in ``mcc_iso18245.json`` (from the MIT-licensed
PyPI package iso18245 1.4.1, "Copyright (c) 2020 Jerome Leclanche"; full notice in that file).
Each word below names a kind of business in the description of an MCC that ``lexicon.py``
(``_MCC_RANGES`` / ``_MCC_ISO_EXTRA``) files under the category, e.g. 8041 "Chiropractors" →
HEALTH, 5811 "Caterers" → MEALS, 4214 "... Trucking ..." → SHIPPING. Chosen by hand from those
descriptions: a word was kept only if the descriptions use it for one category alone and it names
a business (not "services", "stores", "supplies"), and the singular is added beside the plural a
card descriptor would print. Words already in ``lexicon.py`` are not repeated.

Like every lexicon entry they are features (``lex:CATEGORY``) whose trust the model learns; they
never decide alone.
"""

from __future__ import annotations

KEYWORDS_ISO: dict[str, str] = {
    "HEALTH": """chiropodist chiropodists chiropractors eyeglasses hearing_aids ophthalmologist
        ophthalmologists optometrists orthodontist orthodontists orthopaedic orthopedic osteopaths
        osteopathy pharmacies physician physicians podiatrist podiatrists podiatry prosthetics""",
    "MEALS": """bakeries caterer caterers catering discotheque discotheques taverns fast_food eating_places
        drinking_places""",
    "WELFARE": """confectionery dairy dairies meat_market provisioner provisioners candy_store""",
    "LODGING": """campground campgrounds campsite campsites timeshare timeshares""",
    "MISC": """antique antiques aquariums arcade arcades billiard billiards costume costumes crematorium
        crematoriums dating_service dolphinarium florists funeral_home funeral_parlour furrier furriers
        gallery galleries hobby_shop laundry laundromat luggage marina marinas musical_instruments pawn
        pawnshop pawn_shop photofinishing piano pianos seamstress tailor tailors toupee swimming_pool
        theatres circus""",
    "PROF": """architect architects architectural detective_agency employment_agency surveying surveyor
        surveyors stenographer""",
    "REPAIRS": """exterminator exterminating masonry plastering refinishing towing welding wallpaper
        insulation""",
    "SHIPPING": """freight_forwarder forwarders trucking warehousing""",
    "TRAINING": """bookshops colleges universities vocational_school""",
}
