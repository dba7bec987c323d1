"""Place words: tokens of city, district and region names that say where, never what.

Used by per-organisation memory (``memory.py``) so that a merchant key is not a city name: two
merchants that both start with "BANGKOK" or "HO CHI MINH" are not the same merchant. Taken from
the generator's city lists (``data/classifier/world.py``) plus the main cities of Thailand,
Vietnam, Malaysia, Indonesia and the Philippines; words that are also category keywords
(``lexicon.py``) or brand words ("orange") are left out.
"""

from __future__ import annotations

PLACE_WORDS: frozenset[str] = frozenset("""
    ho hcm kl jb pj sg
    aalborg aarhus abu abuja adelaide ain aires ajman alam alegre alexandria amsterdam angeles
    ankara antalya antwerpen arequipa athens athina atlanta auckland austin aveiro aviv bahru bali
    bandung bangalore bangkok barcelona barranquilla basel batam bay beijing bekasi belo bengaluru
    bergen berlin bern besiktas bien bilbao birmingham bogor bogota bologna bordeaux boston braga
    brasilia brisbane bristol brno brooklyn brugge brussel bruxelles bucaramanga buenos bursa busan
    caba cairo calgary cali cambridge can canberra cancun cape cartagena cascais causeway cdmx cebu
    chengdu chennai chi chiang chicago christchurch ciudad coast coimbra concepcion condes cordoba
    cork curitiba cusco cyberjaya daegu dammam danang davao delhi den denpasar denver depok dhabi
    drammen dresden dubai dublin duesseldorf dun dunedin durban edinburgh edmonton eindhoven
    ekaterinburg esbjerg espoo faro farwaniya firenze francisco frankfurt frederiksberg fukuoka
    galway gangnam gdansk geneve genova gent georgetown giza glasgow gold gon goteborg graz
    groningen guadalajara guangzhou gurgaon haag haarlem hai haifa haiphong halifax hamburg hamilton
    hangzhou hannover hanoi harcourt hat hawally hcm hcmc helsinki heraklion herzliya hong horizonte
    houston hsinchu hue hurghada hyderabad ibadan ikeja incheon innsbruck ipoh isidro istanbul izmir
    jahra jakarta janeiro jaya jeddah jerusalem jkt jogja johannesburg johor jurong kadikoy kaen
    kaohsiung katowice kazan khaimah khobar khon kilimani kinabalu kisumu klagenfurt klang kobenhavn
    koeln kok kolkata kong kota kowloon krakow krung krungthep kuala kuching kuwait kyoto lagos
    laoghaire las lausanne leeds leipzig lekki leuven liberec liege lille lima limerick linkoping
    linz lisboa liverpool lodz london los lumpur luzern lyon madinah madrid mai makassar makati
    makkah malacca malaga malmo manchester manila mar marseille medan medellin melaka melbourne
    mendoza mexico miami milano minh miraflores mombasa mong monterrey montreal moscow moskva
    muenchen mumbai nagoya nairobi nakuru nang nantes napoli new nha noi nonthaburi novosibirsk
    oakland odense olomouc orchard osaka oslo ostrava ottawa oulu palembang palma paris pasig patra
    pattaya paulo penang penh perth petaling phnom phong phuket pinang piraeus plata plzen port
    portland porto poznan praha prakan pretoria providencia puebla pulau pune putrajaya quebec
    queenstown queretaro quezon ramat ras recife rennes rio riyadh roma rosario rotterdam sai saigon
    salmiya salvador salzburg samut san sandton sankt-peterburg santiago sao sapporo seattle selatan
    semarang seongnam seoul seremban sevilla sha shah shanghai sharjah sheikh shenzhen sheva shibuya
    siam silom singapore stavanger stellenbosch stockholm strasbourg stuttgart subang sukhumvit
    surabaya sydney taguig taichung tainan taipei tampere tampines tangerang tau tel thep
    thessaloniki tho tijuana tokyo torino toronto toulouse town trang tromso trondheim trujillo tsim
    tsui turku uppsala utrecht valencia valparaiso vancouver vantaa vasteras venezia verona
    vientiane vina vung warszawa waterford wellington westlands wien wroclaw yai yangon yogyakarta
    yokohama york zaragoza zayed zuerich zug 台北市 東京都
""".split())
