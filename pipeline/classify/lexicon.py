"""Keyword lexicons (many languages) and merchant-category-code ranges, per expense category.

These are prior knowledge, written by hand, that let the model recognise a merchant it never
saw: ``TRATTORIA DA GINO`` is a restaurant because of ``trattoria``; ``MCC 3512`` is a hotel
because 3501–3999 are hotel chains. The model receives them as features (``lex:MEALS``,
``mccg:LODGING``) and learns how far to trust each; they never decide on their own.

Keywords are matched after ``normalize.fold`` (lower case, accents stripped): whole tokens,
token bigrams (written with a space), and substrings of long compound words (German
``STADTAPOTHEKE``) and of unspaced scripts (CJK, Thai).
"""

from __future__ import annotations

from functools import lru_cache

from pipeline.classify.lexicon_iso import KEYWORDS_ISO
from pipeline.classify.normalize import fold

_KEYWORDS: dict[str, str] = {
    "MEALS": """restaurant restaurants restaurante ristorante restoran restauracja restaurace ravintola
        restaurang restauracao resto εστιατοριο ресторан مطعم מסעדה 餐厅 餐廳 レストラン 식당 레스토랑 ร้านอาหาร
        nha_hang quan_an cafe caffe caffè café coffee kaffee kafe kahve kahvila kavarna kawiarnia cafeteria
        koffie koffiebar espresso bistro bistrot brasserie trattoria osteria pizzeria pizza pizzas burger burgers
        grill grillhouse bbq barbecue steakhouse steak sushi ramen izakaya taqueria tacos taco cantina pub bar
        tavern taverna bakery boulangerie patisserie baeckerei backerei backstube konditorei panaderia padaria
        piekarnia pekarna bageri leipomo gelateria gelato eiscafe kebab doner doener kebap shawarma falafel
        noodle noodles dumpling dimsum dim_sum wok curry tandoori dhaba biryani canteen kantine mensa diner
        eatery kitchen bagel bagels donut donuts doughnut boba bubble_tea teahouse chai juice smoothie brewery
        brauhaus biergarten gasthaus gasthof wirtshaus imbiss lokanta kebapci meyhane warung rumah_makan kedai
        mamak kopitiam hawker carinderia churrascaria lanchonete pastelaria pasteleria asador marisqueria
        cerveceria tapas pintxos creperie friterie snack snackbar uber_eats ubereats deliveroo doordash grubhub
        just_eat justeat lieferando thuisbezorgd glovo wolt foodpanda grabfood swiggy zomato ifood rappi talabat
        menulog postmates seamless baemin eleme meituan kafe кафе кофейня пиццерия столовая бар καφε ταβερνα
        مقهى كافيه 咖啡 茶餐厅 茶餐廳 面馆 饭馆 火锅 食堂 居酒屋 ラーメン 寿司 カフェ 喫茶 焼肉 食 카페 커피 치킨 ร้านกาแฟ กาแฟ
        quan pho bun com_tam banh_mi coffeehouse roastery roasters tea_room sandwich sandwiches salad poke
        wings chicken fried_chicken pollo pollos frango poulet hendl gyros souvlaki meze yemek sofrasi
        pide lahmacun cocina comedor fonda cevicheria parrilla empanadas arepas sushibar hamburgueria
        acai sorveteria cafetaria eetcafe frituur lunchroom spisested kro krog ravintola_ kahvio
        jidelna hospoda pivnice bistrot trattoria_ ristorazione enoteca vineria cocktail lounge nightclub
        club_bar wine_bar taproom beer biere bier cerveza""",
    "WELFARE": """supermarket supermarkt supermarche supermercado supermercato supermarkedet supermarked
        hypermarche hypermarket grocery groceries grocer market markt marche mercado mercato mercadona
        minimarket minimarkt minimercado superette epicerie alimentation alimentari alimentos abarrotes
        lebensmittel levensmiddelen spozywczy potraviny livsmedel dagligvarer ruokakauppa bakkal market_
        marketi bakkaliye bazar bazaar convenience conbini konbini kombini 7_eleven seven_eleven minimart
        provisions provision kirana sari_sari tienda_de_abarrotes fresh_market fruits fruit frutas verdura
        verduras groenten metzgerei butcher boucherie carniceria macelleria slagerij halal_meat fishmonger
        poissonnerie pescaderia hortifruti sacolao acougue emporio supermercados супермаркет продукты
        магазин σουπερ_μαρκετ سوبرماركت هايبر بقالة סופרמרקט 超市 超级市场 便利店 スーパー コンビニ 마트 편의점
        ซุปเปอร์มาร์เก็ต sieu_thi cho tap_hoa pasar_swalayan swalayan toko_kelontong hypermart grocer_
        foodhall food_hall foodmarket delikatessen delicatessen wholesale warehouse_club cash_carry
        cash_and_carry hurtownia mayorista atacadao atacado ingrosso grossiste""",
    "AIR": """airline airlines airways air_lines aerolineas aerolinhas aeromexico linhas_aereas lignes_aeriennes
        fluggesellschaft luchtvaart linee_aeree linie_lotnicze flyg airline_ticket airfare air_ticket
        flight flights vuelo vuelos voo voos vol vols flug fluege volo voli lot loty flyg_ biljett
        aviation aviacion aviacao авиакомпания авиабилеты авиа الطيران طيران 航空 航空公司 机票 機票 항공 항공권 สายการบิน
        hang_khong ve_may_bay penerbangan maskapai tiket_pesawat jet jetstar airasia cebu_pacific""",
    "LODGING": """hotel hotels hotell hotelli hôtel hoteles hoteis motel motels hostel hostal hostels inn
        lodge lodging guesthouse guest_house pension gasthof_ auberge albergo locanda pousada posada
        resort resorts suites suite apartments aparthotel residence residencia b&b bnb bed_breakfast
        airbnb booking booking_com expedia hotels_com agoda trivago hostelworld vrbo homestay ryokan
        minshuku gostinitsa gostinica гостиница отель хостел ξενοδοχειο فندق מלון 酒店 宾馆 賓館 旅馆 旅館
        ホテル 旅館 호텔 모텔 게스트하우스 โรงแรม khach_san nha_nghi penginapan wisma losmen otel oteli pansiyon
        hotell_ majatalo ubytovani penzion pensjonat noclegi zajazd overnachting""",
    "GROUND": """taxi taxis cab cabs uber lyft bolt grab gojek didi ola careem cabify freenow free_now
        mytaxi yandex_taxi yandex_go indrive blablacar rail railway railways train trains bahn db_bahn sncf
        renfe trenitalia italo ns_reizen sbb obb oebb cd_cz pkp intercity eurostar thalys amtrak via_rail
        metro subway underground tube tfl mta bart oyster transit transport transportes trasporti verkehr
        verkehrsbetriebe bus buses autobus flixbus greyhound megabus coach tram tranvia ferry ferries
        parking parkhaus parkplatz parkering parkeerautomaat estacionamento estacionamiento aparcamiento
        parcheggio stationnement garage_parking park_pay parkmobile paybyphone easypark ringgo justpark
        toll tolls peage peaje pedagio maut autostrade autopistas e_zpass ezpass fastrak sunpass
        car_rental car_hire rent_a_car autovermietung location_voiture alquiler_coches hertz avis
        europcar sixt enterprise budget_rent alamo national_car thrifty dollar_rent localiza movida
        unidas limousine limo chauffeur shuttle airport_express такси метро поезд ржд ταξι تاكسي מונית
        出租车 出租車 地铁 地鐵 高铁 铁路 鐵路 タクシー 鉄道 電車 지하철 택시 코레일 แท็กซี่ รถไฟ bts_skytrain xe_om
        ojek kereta commuter scooter lime_scooter tier_scooter voi_scooter bird_scooter rideshare ride""",
    "FUEL": """fuel fuels petrol petroleum gas_station gasoline gasolinera gasolina gasolinera_ gasolineria
        posto_de_gasolina posto combustivel combustible carburant carburants station_service
        tankstelle tankstation tank benzin benzina benzyna benzine bensin bensinstasjon stacja_paliw
        paliwa carburanti distributore rifornimento diesel lpg autogas gnv ev_charging charging
        charge_point chargepoint supercharger ladestation ionity fastned allego recharge akaryakit
        petrol_station fuel_station service_station servo gas_n_go заправка азс бензин βενζινη محطة_وقود
        بنزين דלק 加油站 ガソリンスタンド 주유소 ปั๊มน้ำมัน xang_dau cay_xang pom_bensin spbu""",
    "SOFTWARE": """software saas subscription subscriptions abonnement abo suscripcion assinatura abbonamento
        cloud hosting host webhosting domain domains dns server servers app apps app_store appstore
        itunes google_play play_store apple_com apple_com_bill microsoft msft office365 office_365
        adobe creative_cloud dropbox slack zoom zoom_us atlassian jira github gitlab bitbucket notion figma
        canva aws amazon_web_services azure gcp google_cloud digitalocean heroku vercel netlify cloudflare
        godaddy namecheap squarespace wix shopify_subscription hubspot salesforce mailchimp intercom
        zendesk asana trello monday_com openai chatgpt anthropic claude spotify netflix disney hulu
        youtube_premium youtube prime_video hbo max_com deezer tidal apple_music icloud onedrive
        google_storage google_workspace gsuite workspace license licence lizenz licencia licenza
        antivirus norton mcafee kaspersky avast 1password lastpass nordvpn expressvpn vpn docusign
        quickbooks xero intuit freshbooks sage_software zoho calendly loom grammarly linear_app
        sentry datadog new_relic twilio sendgrid stripe_billing patreon substack medium_com
        软件 订阅 ソフトウェア 구독 ซอฟต์แวร์""",
    "TELECOM": """telecom telecoms telecommunications telekom telecomunicazioni telecomunicaciones
        telecomunicacoes telefonica telefonia telephone telefon telefoon phone mobile mobil mobilfunk
        mobiel movil celular cellular wireless broadband internet fibre fiber glasfaser fibra ftth dsl
        vdsl adsl cable kabel kabel_tv isp prepaid top_up topup recharge_mobile recarga ricarica aufladung doladowanie
        prepago sim esim roaming airtime data_plan vodafone orange t_mobile tmobile telekom_de o2 ee three
        3_uk verizon at&t att sprint comcast xfinity spectrum charter cox centurylink lumen frontier
        movistar claro vivo tim telcel entel bell rogers telus fido freedom_mobile koodo virgin_mobile
        telstra optus singtel starhub m1 maxis celcom digi telkomsel indosat xl_axiata viettel
        mobifone vinaphone ais dtac true_move globe smart_communications airtel jio vi_vodafone bsnl
        safaricom mtn glo etisalat du stc zain ooredoo turkcell turk_telekom vodacom cell_c
        kpn ziggo proximus swisscom sunrise salt_mobile a1 magenta free_mobile sfr bouygues
        telenor telia elisa dna tele2 3_se plus_pl play_pl orange_pl iliad wind_tre fastweb
        мтс мегафон билайн теле2 ростелеком связь 電信 电信 移动 联通 中国移动 中國移動 通信 ドコモ docomo au_kddi
        kddi softbank rakuten_mobile 통신 kt skt sk_telecom lg_u ทรู เอไอเอส cuoc_dien_thoai nap_tien
        pulsa paket_data""",
    "UTIL": """electricity electric electrical_utility power energy energie energia energi strom stromversorgung
        electricite electricidad eletricidade elettricita elektrownia elektrina sahko elnet elhandel
        gas gaz gas_natural natural_gas erdgas gasversorgung water wasser eau agua agua_potable acqua woda
        voda vatten vesi waterbedrijf waterworks wasserwerk stadtwerke utility utilities utilidades
        municipal_utilities council_water sewage sewer abwasser assainissement saneamiento
        edf engie totalenergies_electricite veolia suez iberdrola endesa naturgy enel a2a hera_spa
        edison_energia eon e_on rwe vattenfall enbw eneco essent vattenfall_ fortum ellevio
        british_gas octopus_energy ovo_energy eon_next edf_energy scottish_power sse thames_water
        anglian_water severn_trent united_utilities con_edison coned pg&e pge duke_energy
        dominion_energy xcel_energy national_grid southern_california_edison sce georgia_power
        fpl florida_power entergy ameren eversource dte consumers_energy pseg hydro_quebec
        hydro_one bc_hydro enmax epcor ausgrid agl origin_energy energyaustralia synergy
        meralco maynilad manila_water tenaga tnb pln pdam evn dien_luc cap_nuoc mea pea
        eskom city_power dewa sewa kahramaa cemig copel sabesp light_sa enel_distribucion
        электроэнергия энергосбыт мосэнерго водоканал газпром_межрегионгаз ηλεκτρισμος δεη كهرباء مياه
        חשמל 电费 电力 水费 燃气 電力 電気 ガス 水道 한국전력 한전 전기 가스 수도 การไฟฟ้า ไฟฟ้า การประปา ประปา
        tien_dien tien_nuoc nuoc_sach nuoc dien_luc listrik""",
    "RENT": """rent rental rentals renta alquiler aluguel affitto loyer loyers miete mieten mietzahlung huur
        hyra husleie vuokra najem czynsz najemne kira sewa_kantor sewa kiralama kira_bedeli
        landlord landlords lease leasing_office office_rent office_space workspace coworking co_working
        cowork wework regus spaces iwg servcorp industrious impact_hub mindspace knotel convene
        business_centre business_center office_centre serviced_office property properties property_management
        realty real_estate estate estates immobilien immobiliere inmobiliaria imobiliaria immobiliare
        vastgoed fastigheter kiinteisto nieruchomosci hausverwaltung gerance syndic administracion_fincas
        condominio condominium strata hoa association_fees storage_unit self_storage mietlager
        аренда арендная_плата ενοικιο ايجار إيجار שכירות 租金 房租 租赁 家賃 賃料 월세 임대료 ค่าเช่า tien_thue_nha""",
    "SUPPLIES": """office_supplies office_supply stationery stationer stationers papeterie papeleria papelaria
        cartoleria schreibwaren burobedarf buerobedarf bueromaterial kantoorartikelen kantoor
        kontorsmaterial kontorartikler toimistotarvike artykuly_biurowe papirnictvi kirtasiye
        staples office_depot officemax office_works officeworks viking_direct lyreco bureau_vallee
        ryman rymans paperchase muji daiso dollar_tree dollarama poundland hema flying_tiger
        tiger_stores action_nl ikea jysk home_goods homegoods bed_bath household homeware home_store
        kitchenware ustensiles toner ink ink_cartridge cartridge printer_paper paper papier papel
        envelopes pens pen stift boligartikler hushall artigos_de_escritorio material_escolar
        material_de_oficina fournitures fournitures_de_bureau forniture_ufficio канцтовары канцелярия
        χαρτοπωλειο قرطاسية מכשירי_כתיבה 文具 办公用品 文房具 事務用品 문구 사무용품 เครื่องเขียน van_phong_pham
        alat_tulis atk cleaning_supplies janitorial_supplies amazon amzn amzn_mktp amazon_mktplace
        amazon_marketplace amazon_com""",
    "IT": """electronics electronic elektronik electronique electronica eletronicos elettronica elektronika
        elektro electro computer computers computador computadora ordinateur informatique informatica
        informatik rechner laptop laptops notebook notebooks tablet tablets monitor monitors keyboard
        hardware pc_world currys best_buy bestbuy media_markt mediamarkt saturn fnac darty boulanger
        elgiganten power_no verkkokauppa gigantti euronics expert_electro unieuro mediaworld
        worten jb_hi_fi jbhifi harvey_norman the_good_guys noel_leeming apple_store apple_retail
        microsoft_store dell lenovo hp_store hewlett asus acer samsung_store micro_center newegg
        bh_photo b&h_photo adorama cdw insight_direct scan_computers overclockers alternate_de
        cyberport notebooksbilliger conrad reichelt x_kom morele komputronik alza datart czc
        kabum pichau magazine_luiza fravega garbarino coppel elektra yodobashi bic_camera
        biccamera edion kojima yamada_denki joshin sofmap 電気 电脑 電腦 数码 數碼 电子 電子 家電 컴퓨터
        전자 하이마트 คอมพิวเตอร์ dien_may dien_thoai the_gioi_di_dong fpt_shop phong_vu cellphones
        electronic_city courts challenger croma reliance_digital vijay_sales компьютер электроника
        мвидео эльдорадо днс dns_shop ηλεκτρονικα كمبيوتر الكترونيات מחשבים gadgets gadget phone_store
        usb cables ssd""",
    "MARKETING": """advertising advertisement ads ad adverts werbung werbeagentur publicite publicidad
        publicidade pubblicita reklama reklam reclame marketing marketingbureau agency agence agencia
        agenzia facebook_ads facebk fb_ads meta_ads meta_platforms google_ads adwords google_adwords
        linkedin_ads twitter_ads x_ads tiktok_ads tiktok_ad snapchat_ads pinterest_ads bing_ads
        microsoft_ads amazon_ads reddit_ads taboola outbrain criteo adroll semrush ahrefs mailerlite
        constant_contact printing print printer printers print_shop druckerei imprimerie imprenta
        grafica tipografia drukarnia tryckeri kirjapaino vistaprint moo_print 48hourprint
        overnightprints printful signage signs sign_shop banners banner flyers flyer brochure
        leaflets promotional promo merch branding design_studio media_buying billboard radio_ad
        sponsoring sponsorship sponsorship_fee trade_show messe exhibition expo реклама διαφημιση
        اعلان إعلان פרסום 广告 廣告 広告 광고 โฆษณา quang_cao iklan percetakan""",
    "PROF": """law lawyer lawyers legal attorney attorneys solicitor solicitors barrister notary notaire
        notario notar notaio rechtsanwalt rechtsanwaelte anwalt kanzlei avocat avocats abogado abogados
        advogado advogados avvocato avvocati advocaat advocaten adwokat kancelaria advokat advokatfirma
        asianajo avukat hukuk accounting accountant accountants accountancy bookkeeping bookkeeper cpa
        audit auditor auditors auditing steuerberater steuerberatung wirtschaftsprufer buchhaltung
        expert_comptable comptable cabinet_comptable contable contador gestoria asesoria asesores
        contabilidade contador_ commercialista studio_commercialista boekhouder accountantskantoor
        ksiegowosc biuro_rachunkowe revisor regnskap kirjanpito muhasebe mali_musavir consulting
        consultant consultants consultancy beratung berater unternehmensberatung conseil consultoria
        consulenza advies adviseurs doradztwo konsult tax_advisor tax_adviser tax_preparation
        tax_services h&r_block hr_block jackson_hewitt deloitte pwc pricewaterhousecoopers kpmg ey
        ernst_young bdo grant_thornton rsm mazars baker_tilly moore_stephens accenture mckinsey bcg
        bain payroll_services recruitment recruiter staffing headhunter upwork fiverr toptal freelancer
        translation translator traductions ubersetzung notary_public юрист адвокат нотариус бухгалтер
        аудит консалтинг δικηγορος λογιστης محامي محاسب מעורך_דין רואה_חשבון 律师 律師 会计 會計 税务
        弁護士 税理士 会計事務所 司法書士 법무 변호사 세무 회계 ทนาย สำนักงานบัญชี luat_su ke_toan kiem_toan
        notaris konsultan pengacara akuntan""",
    "INSURANCE": """insurance insurer insurers insure assurance assurances assureur seguro seguros seguradora
        aseguradora assicurazione assicurazioni versicherung versicherungen verzekering verzekeringen
        ubezpieczenie ubezpieczenia pojistovna pojisteni forsakring forsikring vakuutus sigorta
        ασφαλεια ασφαλειες страхование страховая ингосстрах росгосстрах تامين تأمين ביטוח 保险 保險 保険
        보험 ประกัน bao_hiem asuransi insurance_premium premium policy polizza police_assurance
        allianz axa generali zurich aviva prudential metlife aig chubb mapfre ergo hdi huk
        huk_coburg debeka r_v r+v signal_iduna gothaer maif macif matmut groupama mma gan
        direct_line admiral hastings_direct legal_&_general legal_general lv= lv_insurance
        geico progressive state_farm allstate liberty_mutual nationwide farmers_insurance travelers
        usaa hiscox next_insurance simply_business pzu warta nationale_nederlanden achmea
        centraal_beheer aegon ohra if_skadeforsakring trygg_hansa folksam gjensidige tryg
        tapiola lahitapiola fidelidade tranquilidade linea_directa mutua_madrilena sanitas_seguros
        bradesco_seguros porto_seguro sulamerica qbe suncorp nrma iag aami budget_direct tower
        southern_cross discovery_insure old_mutual sanlam outsurance hollard aia great_eastern
        manulife sun_life fwd ping_an china_life nippon_life tokio_marine sompo samsung_fire
        hyundai_marine db_insurance""",
    "TRAINING": """school schule ecole escuela escola scuola school_ skola koulu szkola okul academy akademie
        academie academia akademia university universitat universitaet universite universidad
        universidade universita uniwersytet college hochschule fachhochschule institute institut
        instituto istituto course courses kurs kurse cours curso cursos corso corsi tuition training
        trainings schulung weiterbildung formation formacion formacao formazione opleiding
        utbildning koulutus szkolenie szkolenia egitim seminar seminars seminaire seminario workshop
        webinar conference conferences konferenz conference_fee congres congreso udemy coursera
        edx linkedin_learning skillshare pluralsight masterclass datacamp codecademy duolingo
        babbel rosetta_stone berlitz wall_street_english ef_education education educational bildung
        education_fee exam exams examen exam_fee certification certificate cert pmi isaca comptia
        books book bookshop bookstore bookseller libreria livraria librairie buchhandlung buchhandel
        boekhandel ksiegarnia kirjakauppa bokhandel kitabevi waterstones barnes_noble barnes&noble
        chapters_indigo thalia hugendubel fnac_livres amazon_kindle kindle audible o_reilly oreilly
        safari_books springer elsevier wiley pearson mcgraw cengage kinokuniya books_kinokuniya
        tsutaya junkudo 書店 书店 教育 培训 学校 學校 大学 大學 研修 セミナー 학원 교육 서점 โรงเรียน
        อบรม หนังสือ truong dao_tao nha_sach sekolah kursus pelatihan toko_buku школа обучение курсы
        книги книжный университет σχολη φροντιστηριο βιβλια مدرسة تدريب كتب בית_ספר קורס ספרים""",
    "SHIPPING": """courier couriers shipping shipment ship postage post_office postoffice post postal
        poste posta poczta posten posti postnord postnl bpost deutsche_post dhl dhl_express dpd ups
        fedex fed_ex tnt gls hermes evri royal_mail parcelforce parcel parcels paket pakete colis
        colissimo chronopost la_poste correos correios correo_argentino seur mrw nacex sda brt
        bartolini poste_italiane inpost poczta_polska ceska_posta ppl_cz zasilkovna packeta
        bring posten_norge budbee instabox usps stamps_com stamps shipstation pirate_ship
        easypost sendcloud packlink shippo canada_post purolator australia_post auspost startrack
        sendle nz_post courierpost aramex smsa naqel japan_post yamato sagawa kuroneko 郵便
        ヤマト運輸 佐川急便 宅急便 快递 快遞 顺丰 順豐 sf_express zto yto sto_express 中通 圆通 邮政 郵政
        우체국 택배 cj_logistics 한진택배 ไปรษณีย์ kerry_express flash_express j&t jnt ninja_van
        ninjavan lalamove gogovan grabexpress grab_express borzo dunzo delhivery bluedart
        blue_dart dtdc india_post pos_indonesia jne tiki sicepat buu_dien vnpost ghn giao_hang
        giaohangnhanh ghtk viettel_post почта почта_россии сдэк cdek boxberry ταχυδρομειο ελτα
        acs_courier بريد شحن דואר freight spedition speditore transitaire logistics logistik
        logistica logistique fulfillment fulfilment moving movers umzug demenagement mudanzas
        mudancas""",
    "REPAIRS": """repair repairs reparatur reparaturen reparation reparations reparacion reparaciones
        reparacao reparacoes riparazione riparazioni reparatie naprawa naprawy oprava oprav
        reparasjon reparation_ korjaus tamir tamirat maintenance maintenance_services wartung
        instandhaltung entretien mantenimiento manutencao manutenzione onderhoud konserwacja udrzba
        underhall huolto bakim service_center servicecenter plumber plumbing klempner sanitar
        installateur plombier fontanero fontanería encanador idraulico loodgieter hydraulik
        electrician elektriker electricien electricista elettricista elektricien elektryk
        hvac heating heizung chauffage calefaccion aquecimento riscaldamento verwarming
        air_conditioning aircon klimaanlage climatisation locksmith schlusseldienst serrurier
        cerrajero chaveiro fabbro slotenmaker slusarz roofing roofer dachdecker couvreur
        painter painters maler malerbetrieb peintre pintor imbianchino schilder carpenter
        carpentry tischler schreiner menuisier carpintero falegname timmerman stolarz handyman
        hausmeister gardener gardening landscaping gartenbau jardinage jardineria jardinagem
        giardinaggio hovenier cleaning cleaners reinigung gebaudereinigung nettoyage limpieza
        limpeza pulizie schoonmaak sprzatanie uklid stadning siivous temizlik janitorial janitor
        pest_control schadlingsbekampfung deratisation fumigacion dedetizacao disinfestazione
        home_depot homedepot lowes lowe_s b&q wickes homebase screwfix toolstation obi bauhaus
        hornbach toom hagebau globus_baumarkt leroy_merlin castorama brico_depot bricomarche
        mr_bricolage brico gamma karwei praxis hubo bricorama bricocenter bricoman bunnings
        mitre_10 mitre10 bunnings_warehouse placemakers rona home_hardware canadian_tire_auto
        ace_hardware true_value menards harbor_freight sodimac easy_ar leroy cetemco
        hardware_store ferreteria ferramentas ferramenta ferramenta_ ferronnerie eisenwaren
        ijzerwaren rautakauppa byggmax jula clas_ohlson biltema k_rauta stark_bygg bygger
        tiles fliesen carrelage azulejos baumarkt bricolage diy locksmith_ glazier glass_repair
        windscreen autoglass auto_repair autowerkstatt kfz_werkstatt garage_repair mechanic
        mecanico meccanico mecanique car_service tire tyre tyres tires reifen pneus neumaticos
        pneumatici banden opony atu midas jiffy_lube meineke firestone goodyear_service
        kwik_fit halfords_autocentre norauto feu_vert speedy point_s euromaster vulco
        car_wash carwash autowaschanlage lavage_auto lavado_autos lava_jato autolavaggio
        ремонт сервис сантехник электрик уборка клининг επισκευη συντηρηση تصليح صيانة תיקון 维修
        維修 修理 保养 清洁 清潔 修理 メンテナンス 清掃 수리 정비 청소 ซ่อม ซ่อมบำรุง ทำความสะอาด sua_chua
        bao_tri ve_sinh bengkel servis perbaikan""",
    "BANKFEES": """bank_fee bank_fees bank_charge bank_charges service_charge service_charges service_fee
        monthly_fee monthly_service maintenance_fee account_fee account_maintenance overdraft
        overdraft_fee nsf nsf_fee returned_item wire_fee wire_transfer_fee incoming_wire outgoing_wire
        intl_fee international_fee foreign_transaction foreign_transaction_fee fx_fee exchange_fee
        currency_conversion non_sterling cross_border atm_fee atm_surcharge card_fee annual_fee
        late_fee interest_charge finance_charge stop_payment paper_statement statement_fee
        kontofuhrung kontofuehrung kontofuhrungsgebuhr kontofuehrungsgebuehr kontoführungsgebühr
        entgelt entgelte gebuhr gebuehr gebuhren gebuehren rechnungsabschluss abschluss
        frais frais_bancaires frais_de_tenue commission commissions cotisation cotisation_carte
        agios comision comisiones comision_mantenimiento comissao comissoes tarifa tarifas
        tarifa_bancaria cesta_de_servicos pacote_servicos iof commissione commissioni spese
        canone canone_conto bankkosten kosten_bank provisie oplata oplaty prowizja prowizje
        poplatek poplatky avgift avgifter gebyr gebyrer palvelumaksu kulut ucret masraf
        hesap_isletim komisyon комиссия обслуживание_счета προμηθεια رسوم عمولة עמלה 手续费 手續費
        手数料 振込手数料 수수료 ค่าธรรมเนียม phi phi_dich_vu phi_quan_ly biaya biaya_admin
        stripe_fee stripe_fees paypal_fee paypal_fees square_fees sq_fees merchant_fee merchant_fees
        processing_fee processing_fees card_processing chargeback chargeback_fee adyen_fee
        sumup_fee payout_fee transfer_fee transaction_fee""",
    "HEALTH": """pharmacy pharmacie pharmacia farmacia farmacie farmacias apotheke apotheken apotek apteekki
        apteka lekarna eczane eczanesi drugstore drug_store chemist chemists medical medicine
        medicina medecin medico medicos doctor doctors dr arzt arztpraxis praxis_dr hausarzt
        zahnarzt zahnarztpraxis dentist dentists dental dentaire dentista odontologia odontologo
        tandarts tandlakare hammaslaakari stomatolog stomatologia zubni dis_hekimi clinic clinics
        clinica clinique klinik kliniek klinika poliklinik policlinico hospital hospitals hopital
        hospitais ospedale ziekenhuis szpital nemocnice sjukhus sairaala hastane krankenhaus
        optician opticians optician_ optiker opticien optica otica ottica opticien_ optometrist
        optometry eyecare eye_care vision_express specsavers fielmann apollo_optik grandvision
        lenscrafters pearle physio physiotherapy physiotherapie kinesitherapeute fisioterapia
        fysiotherapie fizjoterapia chiropractor chiro osteopath osteopathe labor laboratory
        laboratoire laboratorio lab_tests diagnostics radiology imaging veterinary_ health
        healthcare gesundheit sante salud saude salute gezondheid zdrowie terveys saglik
        cvs cvs_pharmacy walgreens rite_aid duane_reade boots lloyds_pharmacy superdrug
        shoppers_drug_mart jean_coutu pharmaprix london_drugs priceline_pharmacy chemist_warehouse
        terry_white guardian_pharmacy watsons mannings unichem farmacias_ahumada cruz_verde
        salcobrand farmacias_guadalajara farmacias_del_ahorro farmacias_similares drogasil
        droga_raia pague_menos drogaria drogaria_sao_paulo panvel doc_morris docmorris shop_apotheke
        apollo_pharmacy medplus netmeds pharmeasy 1mg guardian kimia_farma k24 century_pharmacy
        long_chau pharmacity an_khang fascino boots_th аптека клиника стоматология больница
        φαρμακειο ιατρειο οδοντιατρος صيدلية عيادة مستشفى בית_מרקחת מרפאה 药房 藥房 药店 藥局 医院 醫院
        诊所 診所 牙科 薬局 病院 医院_ クリニック 歯科 眼科 약국 병원 의원 치과 안과 ร้านขายยา โรงพยาบาล คลินิก
        nha_thuoc benh_vien phong_kham nha_khoa apotek_ rumah_sakit klinik_ dokter""",
    "MISC": """clothing clothes apparel fashion mode moda bekleidung vetements ropa roupa abbigliamento
        kleding odziez obleceni klader vaatteet giyim boutique outlet shoes shoe schuhe chaussures
        zapatos zapateria sapatos scarpe schoenen buty boty skor kengat ayakkabi jewelry jewellery
        jeweler juwelier bijouterie joyeria joalheria gioielleria sieraden jubiler zlatnictvi
        smycken koru kuyumcu watches uhren toys toy spielwaren jouets juguetes brinquedos giocattoli
        speelgoed zabawki hracky leksaker lelut oyuncak sports sport sporting_goods sportartikel
        articles_de_sport deportes esportes articoli_sportivi sportwinkel gym fitness fitnessstudio
        salle_de_sport gimnasio academia_ginastica palestra sportschool silownia posilovna gym_
        kuntosali spor_salonu yoga pilates spa wellness massage salon hair hairdresser haircut
        barber barbershop friseur coiffeur coiffure peluqueria cabeleireiro parrucchiere kapper
        fryzjer kadernictvi frisor kampaamo kuafor beauty beaute belleza beleza bellezza schoonheid
        uroda kosmetik cosmetics cosmetiques cosmeticos cosmetici nails nail manicure tattoo
        cinema kino cine cinemas movie movies theatre theater teatro theatre_ concert concerts
        tickets ticket ticketmaster eventbrite livenation museum museo musee zoo aquarium
        amusement theme_park bowling golf golf_club club casino lottery lotto florist fleuriste
        floristeria floricultura fiorista bloemist kwiaciarnia florist_ flowers blumen fleurs
        flores fiori bloemen kwiaty gift gifts geschenke cadeaux regalos presentes regali
        cadeaus prezenty souvenir souvenirs pet pets petshop pet_store zoohandlung animalerie
        mascotas pet_shop tabak tabac tabaco tobacco tabacchi liquor liquors wine_shop
        spirituosen caviste licoreria bottle_shop off_licence department_store kaufhaus
        grand_magasin grandes_almacenes magazzini warenhuis dom_towarowy varuhus tavaratalo
        mall shopping shopping_center centro_comercial einkaufszentrum marketplace ebay etsy
        aliexpress shein temu wish zalando asos zara h&m hm uniqlo primark mango c&a
        decathlon intersport nike adidas puma sephora douglas lush rossmann dm_drogerie
        muller_drogerie marionnaud kruidvat etos matas normal lego smyths toys_r_us
        одежда обувь салон_красоты фитнес кино ρουχα παπουτσια ملابس أحذية בגדים 服装 服裝 鞋
        美容 健身 电影 電影 服 靴 美容院 ジム 映画 옷 신발 미용실 헬스 영화 เสื้อผ้า รองเท้า ร้านเสริมสวย
        ฟิตเนส โรงภาพยนตร์ quan_ao giay my_pham tham_my phong_gym rap_phim pakaian sepatu salon_kecantikan""",
    "SUSPENSE": """atm cash_withdrawal withdrawal withdrawl cash geldautomat bargeld bargeldauszahlung
        auszahlung retrait retrait_dab dab distributeur retiro retiro_efectivo cajero saque
        saque_dinheiro prelievo prelievo_bancomat bancomat geldopname opname wyplata bankomat
        vyber uttag kontantuttak nosto para_cekme nakit снятие_наличных банкомат αναλημψη سحب_نقدي
        משיכה 取款 提款 取現 引き出し 出金 출금 현금 ถอนเงิน rut_tien tarik_tunai transfer
        transfers transferencia transferencias transferencia_enviada virement virement_emis
        uberweisung ueberweisung overboeking przelew prevod overforing tilisiirto havale eft
        zelle venmo cash_app cashapp square_cash revolut_transfer wise_transfer transferwise
        western_union moneygram remitly worldremit pix pix_enviado ted doc bizum satispay
        swish vipps mobilepay twint blik payid paynow promptpay upi_transfer imps neft rtgs
        check chq cheque cheque_no check_no scheck perevod перевод μεταφορα تحويل העברה 转账 轉帳
        振込 송금 이체 โอนเงิน chuyen_khoan unknown misc_debit debit_adjustment adjustment
        reversal correction eigenuebertrag eigenubertrag umbuchung uebertrag ubertrag own_account
        internal_transfer transfer_from transfer_to savings_transfer virement_interne virement_compte
        traspaso traspaso_entre_cuentas transferencia_entre_cuentas giroconto girokonto_uebertrag
        overboeking_eigen_rekening egen_overforing oma_tilisiirto kendi_hesabima sweep
        payment_thank thank_you autopay_payment zahlung_danke""",
    "PAYIN": """deposit deposito gutschrift credit_transfer sepa_credit incoming_payment payment_received
        received_from receipt remittance remittance_advice invoice inv factura fatura fattura
        rechnung facture faktura lasku fatura_no customer customer_payment client paiement_client
        cobro cobranca incasso_ bonifico_ricevuto bonifico accredito abono ingreso recebimento
        pix_recebido ted_recebida doc_recebido virement_recu stripe_payout stripe_transfer
        shopify_payout shopify_payments square_payout square_inc_dep paypal_transfer payout payouts
        settlement merchant_settlement amazon_payments mkpl_payout etsy_payout ebay_payout
        adyen_payout sumup_payout zettle_payout mollie_payout klarna_payout faster_payment
        fps_credit bacs_credit ach_credit ach_deposit direct_deposit wire_in incoming_wire_transfer
        wire_transfer_in zahlungseingang eingang ontvangst ontvangen wplata wplyw prijem inbetalning
        innbetaling suoritus tahsilat поступление оплата_от πληρωμη_απο ايداع إيداع הפקדה 收款 到账
        入金 입금 รับเงิน nhan_tien tien_vao dana_masuk transfer_masuk""",
    "INTEREST": """interest interest_paid interest_credit interest_earned interest_income credit_interest
        zinsen zins zinsgutschrift habenzinsen guthabenzinsen interets interets_crediteurs
        interets_crediteurs_ remuneration intereses intereses_abonados rendimento rendimentos
        juros juros_creditados rendimiento interessi interessi_creditori interessi_attivi rente
        rentebijschrijving creditrente odsetki oprocentowanie uroky urok ranta rantor renter
        korko korot faiz mevduat_faizi проценты начисление_процентов τοκοι فوائد فائدة ריבית
        利息 利息收入 受取利息 이자 ดอกเบี้ย lai lai_tien_gui lai_suat bunga bunga_tabungan jasa_giro
        savings_interest dividend dividends apy""",
    "REFUND": """refund refunds refunded refund_credit return returns returned credit_voucher merchandise_return
        rueckerstattung ruckerstattung erstattung gutschrift_retoure retoure remboursement rembourse
        avoir reembolso reembolsos devolucion devolucao estorno rimborso storno terugbetaling
        restitutie zwrot zwrot_srodkow vraceni vratka aterbetalning retur refusjon hyvitys
        palautus iade geri_odeme возврат επιστροφη استرداد استرجاع החזר 退款 退費 返金 払い戻し 환불
        คืนเงิน hoan_tien pengembalian_dana chargeback_credit reversal_credit cancellation_credit""",
}

# More business-type words (from the corpus phrase bank; ambiguous short words left out).
_KEYWORDS_EXTRA: dict[str, str] = {
    "AIR": """aereo avia avialinii compagnie_aerienne flugdienst hava_yollari havayollari lineas_aereas luftfahrt
        авиалинии สายการบ_น""",
    "FUEL": """autohof brandstof cerpaci_stanice combustiveis delek drivmedel drivstoff filling_station gas_go
        huoltoasema kafsima pertashop polttoaine pompstation pratirio stesen_minyak tachanat_delek tram_xang
        truck_stop zapravka πρατηριο_καυσιμων サーヒスステーション 충전소""",
    "GROUND": """airport_transfer arenda_avto auto_rickshaw autocars autolinee autonoleggio autopujcovna autoverhuur
        autovuokraamo biludlejning biluthyrning bilutleie car_rent car_service chanaya coaches funktaxi
        komunikacja locadora matatu mietwagen navette nha_xe noleggio_auto oto_kiralama otopark parkeergarage
        parkeren parkgarage parkir parkoviste parkovka przewozy pysakointi radiotaxi reisebus remis
        rental_mobil rodoviaria taksi taksowka taxicentrale taxizentrale teksi thue_xe tours_travels
        traslados turizm ulasim van_tai vervoer wypozyczalnia_samochodow парковка חניה مواقف ท_จอดรถ รถเชา
        แท_กซ レンタカー 停车场 租车 駐車場 렌터카 주차장""",
    "HEALTH": """apotheek augenoptik beit_merkachat botica botika centrum_medyczne chiropractic consultorio dawa
        dermatology diagnostic_center dis_klinigi dott drogueria family_practice farmakeio farmasi
        fisioterapi fizik_tedavi fysioterapi fysioterapia fyzioterapie gabinet_lekarski huisartsenpraktijk
        iatreio kinesitherapie kliniki klinikk laakariasema laboratorium laboratuvar laegehus lakarmottagning
        legesenter mat_kinh medtsentr mirpaa nursing_home odontiatreio optical optics optik optika optikko
        optique optyk ordinace_mudr orthodontics orthopaedie path_lab pediatrics pharm physical_therapy
        poliambulatorio przychodnia pusat_perubatan quay_thuoc tandlaege tannlege tip_merkezi urgent_care
        vardcentral xet_nghiem медцентр оптика מרפאת_שיניים مركز_طبي トラック 整骨院 眼镜 안경""",
    "INSURANCE": """asfaleies bima bituach casualty courtage health_plan krankenkasse mutuelle previdencia strakhovanie
        towarzystwo_ubezpieczen underwriters zorgverzekeraar 화재해상""",
    "IT": """bilgisayar computacion datorer digital_store infotech it_service it_solutions komputer komputery
        kompyutery may_tinh mobiles phone_shop pocitace sklep_komputerowy tech_store tecnologia teknoloji
        คอมพ_วเตอร ハソコン""",
    "LODGING": """affittacamere agriturismo alojamiento apartamentos apartamenty dharamshala ferienwohnung funduq
        gaestehaus gasthem gite gjestehus herberg hosteria landhotel logement motelli parador pensao
        residency rumah_tumpangan vandrarhem vandrerhjem xenodocheio شقق_فندقية""",
    "MARKETING": """ajans comunicacao_visual drukkerij matbaa promotions rotulos signaletique stampa tipografiya tiskarna
        truyen_thong werbetechnik типография 印刷 인쇄""",
    "MEALS": """auberge baari bakeri bakeshop bakkerij bhojanalaya birreria borekci boteco churreria cukiernia
        cukrarna estiatorio gatukok gospoda grillbar grilli grillroom kaffebar karczma kibanda kofeinya
        kofteci konditori kushari lechon loncheria marisqueira mataam mie_ayam nasi_goreng nasi_kandar
        nyama_choma ouzeri panificio pannenkoekenhuis pastane pasticceria pekarnya piadineria pierogarnia
        pizzaria pizzerie psistaria rosticceria sate schnitzelhaus shaurma shokudo silog smorrebrod spiseri
        stolovaya sweets taberna tasca tavola_calda tea_house tiffin tra_sua traiteur zacharoplasteio
        กวยเต_ยว ขาวม_นไก うとん そは 小吃 烧烤 饭店 饺子馆 고기집 국밥 김밥 분식""",
    "MISC": """adega alkohole animali anthopoleio art_supplies barbearia barbers barbier barbiere berber biograf
        bioscoop bioskop blomster butik butikk calcados calzature cat_toc centro_estetico cicekci
        dierenwinkel distro djuraffar do_choi dyrebutikk dyrehandel elainkauppa elokuvateatteri enoteca
        estanco estetica fitnes floreria flower_shop footwear garments guldsmed gullsmed guzellik_salonu
        gymnastirio hadiah hediyelik igrushki jewellers jugueteria kado kapsalon kasut kauneushoitola
        kedai_bunga kedai_emas kedai_gunting kenka klaer kommotirio kosmimata kukkakauppa kultaseppa
        kvetinarstvi legetoj leker mainan mispara music_store naalaim nagelstudio obuv obuwie odezhda ofna
        olahraga onglerie outdoor papoutsia parfuemerie parfumeri parfumerie parikmakherskaya parturi pawagam
        perfumaria perfumeria perfumes podarki presenter profumeria putiikki qua_tang roucha sapataria sarees
        schuhhaus shop_hoa sinema skjonnhet sklep_zoologiczny skonhed skonhet slijterij spor sukan tabacaria
        tabaccheria tabakwaren tachshitim tekel the_thao thoi_trang thrift_store tiem_vang toko_bunga
        toko_emas trafika treningssenter tsvety ukay_ukay urheilu vape weinhandlung wines yuvelirnyi zverimex
        κομμωτηριο υποδηματα игрушки цветы מספרה صالون عطور ของเลน ฟ_ตเนส รานดอกไม รานทอง รานเส_อผา
        รานเสร_มสวย おもちゃ スホーツ ネイル フティック ヘット 体育 宝石 宠物 影城 玩具 珠宝 理容 礼品 美发 花屋 花店 雑貨 꽃집 네일 바버샵 선물 스포츠 애견 옷가게 완구
        주얼리""",
    "PROF": """administratiekantoor advocates assessoria bogforing bufete bukhgalteriya cartorio consultores
        danismanlik danove_poradenstvi dikigoriko_grafeio escritorio_contabil fiduciaire kantor_hukum
        konsalting logistiko_grafeio mali_musavirlik notaria notariusz redovisningsbyra revisjon
        studio_associato studio_commerciale studio_legale tilitoimisto ucetnictvi wirtschaftspruefer yurist
        تدقيق محاماة 咨询 法律事務所""",
    "RENT": """arenda arrendamento arrendamiento bueromiete eiendom ejendomme emlak fastighetsforvaltning
        gayrimenkul gestion_locative grundbesitz husleje immobilier locazione nedvizhimost properti udlejning
        utleie verhuur vermietung wynajem عقارات 不動産 物业 부동산""",
    "REPAIRS": """anahtarci auto_service auto_shop auto_works autobedrijf autofficina autokorjaamo autovaerksted
        batiment bilverkstad bilverksted body_shop borracharia bouwmarkt building_supplies byggemarked
        byggvaror car_care carrozzeria cerrajeria construcciones construction_supply contractors cristaleria
        cuci_kereta cuci_mobil dackverkstad dien_lanh dien_nuoc edilizia electrical electricals electricidad
        electricite_generale elektrik elektro elektroinstalace eletrica elfirma ferragens fundi gara glaserei
        gommista hardware hidraulica hirdavat idraulica ilektrologos instalaterstvi instalator
        installatiebedrijf isenkram jarnhandel jasa_kebersihan jernvare katharismos kedai_hardware kim_khi
        klining kontraktor lasesmed lassmed lastik lop_xe lukko lumber maalaus maleri manutenzioni
        materialy_budowlane menuiserie musach myjnia nikayon officina oficina_mecanica opravy oto_yikama
        painting paints peinture pembersihan pinturas plomberie putki quincaillerie reformas remont remontti
        remonty rengas rengoring renhold renovasi renovation rua_xe sahko sanitaer santekhnika
        schluesseldienst serrurerie service_centre serwis shinomontazh shiputzim siderika stadfirma
        stavebniny stroymaterialy synergeio tadilat tayar technical_services tesisat toko_bangunan tomrer
        tukang_kunci vidracaria vulcanizadora vulcanizing warsztat_samochodowy waschstrasse wulkanizacja
        yapi_market ydravlikos zamecnictvi zelezarstvi συνεργειο υδραυλικος строиматериалы шиномонтаж מוסך
        שיפוצים خدمات_التنظيف ท_าความสะอาด ว_สดกอสราง ハウスクリーニンク ホームセンター 五金 塗装 家政 工務店 建材 整備 汽修 인테리어 철물 카센터""",
    "SHIPPING": """corriere coursier dispatch dostavka ekspedisi encomendas entregas envios forwarding kargo koerier
        koeriersdienst kurier kurierdienst kurir kurye kuryer kuryr livraison logistiek logistyka lojistik
        mail_boxes mensajeria messagerie nakliyat paketdienst paqueteria pengiriman preprava przeprowadzki
        przesylki spedice spedizioni spedycja transport_co transportadora traslochi trasporti umzuege
        van_chuyen verhuizingen доставка курьер ขนสง 宅配 物流 速运 運輸 運送 配送 물류 퀵서비스""",
    "SOFTWARE": """abonament hebergement hospedagem logiciel nube nuvem online_services oprogramowanie phan_mem クラウト
        サフスク 云服务 소프트웨어 클라우드""",
    "SUPPLIES": """arredamenti artykuly_gospodarstwa bueromoebel cancelleria casalinghi dollar_store furniture
        haushaltswaren housewares huishoudwinkel kancelarske_potreby kantstovary meble meubels mobilier
        mobilya mobler moebel moveis muebles nabytek noi_that office_furniture ofis_malzemeleri pappershandel
        perabot quincaillerie_menagere todo_a utilidades variety_store zuccaciye хозтовары 百円ショッフ""",
    "TELECOM": """bundles fibernet glasvezel iletisim svyaz swiatlowod telephonie vien_thong телеком اتصالات انترنت
        モハイル 光回線 宽带 话费充值 모바일 인터넷""",
    "TRAINING": """accademia akademi akademiya akatemia anh_ngu autokoulu autoskola bimbel boghandel coaching_centre
        colegio dershane faculdade frontistirio hoc_vien instituut kedai_buku knigi knihkupectvi koreskole
        kurser kursy kurzy lembaga_pendidikan nauka_jazdy scholi shkola skole surucu_kursu trafikkskole
        trafikskola treinamentos tutorials tutoring vidyalaya vivliopoleio βιβλιοπωλειο автошкола معهد مكتبة
        โรงเร_ยน 塾 教室 아카데미""",
    "UTIL": """acquedotto aguas air_minum cieplownia dogalgaz e_werk eaux elektrik eletrica elnat energetyka
        energosbyt enerji forsyning gazownia jal_board kaukolampo netbeheer plynarna saneamento
        servicios_publicos servizi_idrici suministros vidyut vodarny vodokanal wodociagi 水务 自来水 전력""",
    "WELFARE": """alimentacion autoservicio avondwinkel baqala biomarkt corner_shop dagligvare delikatesy drogheria
        farm_shop feinkost food_mart food_store fruteria general_store general_stores getraenkemarkt grocers
        groentewinkel grontsager grosir hofladen kedai_runcit kobmand kolonial kreopoleio lahikauppa makolet
        matbutik matbutikk mercearia miesny mini_mart naerbutikk narbutik palengke pantopoleio pasaraya
        primeur produce produkty reznictvi saluhall salumeria samoobsluha sarkuteri slagter spaetkauf speceri
        thuc_pham ultramarinos vecerka warzywniak zelenina универсам מכולת ตลาด รานสะดวกซ_อ マート 商店 生鲜 슈퍼 식자재""",
}


# Everyday words of Southeast Asian descriptors, romanised as card networks print them (Thai RTGS
# and common spellings, Vietnamese without tones, Malay, Indonesian, Filipino), plus Korean/Japanese
# romanisations. Ambiguous words are left out ("toko" is any shop, "khao" is also in place names).
_KEYWORDS_SEA: dict[str, str] = {
    "MEALS": """ran_ahan raan_ahan ahan kuay_tiew kuaytiew kuay_teow guay_tiew moo_krata mookata som_tam
        pad_thai khao_man_gai khao_man_kai cha_yen kafae kaphe gafae ca_phe caphe cafe_sua bun_bo com_ga
        nuong quan_nhau bia_hoi an_uong kedai_makan nasi nasi_lemak roti_canai teh_tarik kopi warteg bakso
        mie satay soto ayam_goreng martabak kedai_kopi bubur gerai kainan karinderya lutong_bahay ihaw
        tapsilogan restawran kantin sikdang bunsik pojangmacha yakiniku teishoku cha_chaan_teng dai_pai_dong""",
    "WELFARE": """talat talad talaat ran_khai_khong bach_hoa pasar pasar_raya runcit kelontong alfamart
        indomaret alfamidi tindahan grocery_store""",
    "FUEL": """pom_naman pam_nam_man stesen_petrol pertamina gasolinahan petron""",
    "HEALTH": """ran_khai_ya khai_ya apotik""",
    "LODGING": """rong_raem rongraem""",
    "GROUND": """rot_fai rotfai taxi_meter xe_khach ga_tau tol_road angkot kereta_api lrt mrt bts jeepney""",
    "REPAIRS": """tiem_sua_xe kedai_motor""",
}


# Merchant category codes (ISO 18245) by expense category. Ranges are inclusive.
_MCC_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "AIR": ((3000, 3350), (4511, 4511), (4582, 4582)),
    "GROUND": ((3351, 3500), (4011, 4011), (4111, 4131), (4784, 4784), (4789, 4789), (7511, 7513),
               (7519, 7519), (7523, 7523)),
    "LODGING": ((3501, 3999), (7011, 7012), (7032, 7033), (4722, 4722), (6513, 6513)),
    "MEALS": ((5811, 5814), (5462, 5462)),
    "WELFARE": ((5300, 5300), (5411, 5411), (5422, 5422), (5441, 5451), (5499, 5499)),
    "FUEL": ((5541, 5542), (5552, 5552), (5983, 5983), (5172, 5172)),
    "SOFTWARE": ((5734, 5734), (5815, 5818), (7372, 7372), (7379, 7379), (4816, 4816), (4899, 4899)),
    "TELECOM": ((4812, 4815), (4821, 4821)),
    "UTIL": ((4900, 4900),),
    "SUPPLIES": ((5111, 5111), (5943, 5943), (5044, 5044), (5021, 5021), (5712, 5712), (5719, 5719),
                 (5331, 5331), (5200, 5200)),
    "IT": ((5045, 5045), (5732, 5732), (5946, 5946), (5722, 5722), (5065, 5065)),
    "MARKETING": ((7311, 7311), (7333, 7333), (7338, 7338), (2741, 2741), (7399, 7399)),
    "PROF": ((8111, 8111), (8931, 8931), (8999, 8999), (7392, 7392), (7276, 7276), (7361, 7361)),
    "INSURANCE": ((5960, 5960), (6300, 6399)),
    "TRAINING": ((8211, 8299), (5942, 5942), (5192, 5192), (5994, 5994)),
    "SHIPPING": ((4214, 4215), (4225, 4225), (9402, 9402), (4212, 4213)),
    "REPAIRS": ((1520, 1799), (7342, 7349), (7531, 7549), (7622, 7699), (5211, 5251), (5533, 5533),
                (5039, 5039), (5198, 5198), (5231, 5231)),
    "BANKFEES": ((6012, 6012),),
    "HEALTH": ((5912, 5912), (5047, 5047), (5975, 5976), (8011, 8099)),
    "MISC": ((5310, 5311), (5399, 5399), (5611, 5699), (5931, 5941), (5944, 5945), (5947, 5950),
             (5970, 5978), (5992, 5999), (7210, 7299), (7829, 7999), (5921, 5921), (5993, 5993),
             (5309, 5309), (5733, 5733), (4411, 4411), (5655, 5655), (5661, 5661)),
    "SUSPENSE": ((6010, 6011), (6050, 6051), (4829, 4829), (6540, 6540), (6538, 6538)),
}


# The official ISO 18245 codes (``mcc_iso18245.json``) that no range above covers, mapped one by one
# from their descriptions to the catalog's categories. Payments to brokers, courts and tax
# authorities are not expenses the feed can post: suspense.
_MCC_ISO_EXTRA: dict[str, tuple[int, ...]] = {
    "MISC": (742, 743, 744, 763, 4457, 4468, 5094, 5131, 5137, 5139, 5193, 5261, 5271, 5551, 5561, 5571,
             5592, 5598, 5599, 5713, 5714, 5715, 5718, 5735, 5962, 5963, 5964, 5965, 5966, 5967, 5968, 5969,
             7395, 8351, 8398, 8641, 8651, 8661, 8675, 8699),
    "REPAIRS": (780, 5013, 5051, 5072, 5074, 5511, 5521, 5531, 5532),
    "SUPPLIES": (2842, 5046, 5085, 5099, 5169, 5199),
    "MARKETING": (2791,),
    "HEALTH": (5122,),
    "PROF": (7321, 7322, 7339, 7393, 8734, 8911),
    "SOFTWARE": (7375,),
    "RENT": (7394,),
    "SUSPENSE": (6211, 9211, 9222, 9223, 9311, 9399),
}

def _fold_keyword(word: str) -> str:
    return fold(word.replace("_", " ")).strip()


@lru_cache(maxsize=1)
def keyword_index() -> dict[str, tuple[str, ...]]:
    """Folded keyword (one token, or two tokens joined by a space) → categories it hints at."""
    index: dict[str, list[str]] = {}
    for short, blob in (*_KEYWORDS.items(), *_KEYWORDS_EXTRA.items(), *_KEYWORDS_SEA.items(), *KEYWORDS_ISO.items()):
        for word in blob.split():
            key = _fold_keyword(word)
            if key and short not in index.setdefault(key, []):
                index[key].append(short)
    return {key: tuple(codes) for key, codes in index.items()}


@lru_cache(maxsize=1)
def substring_index() -> dict[str, tuple[str, ...]]:
    """Keywords long enough (or in an unspaced script) to be trusted inside a compound word."""
    out = {}
    for key, codes in keyword_index().items():
        if " " in key:
            continue
        if len(key) >= 6 or (key and ord(key[0]) >= 0x0E00):
            out[key] = codes
    return out


@lru_cache(maxsize=1)
def _mcc_descriptions() -> dict[str, str]:
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent / "mcc_iso18245.json"
    return json.loads(path.read_text(encoding="utf-8"))["codes"]


def mcc_description(mcc: str | None) -> str | None:
    """The ISO 18245 description of a merchant category code (``mcc_iso18245.json``), if listed."""
    return _mcc_descriptions().get(mcc) if mcc else None


def mcc_category(mcc: str | None) -> str | None:
    """Short category name for a merchant category code, or ``None`` if unknown."""
    if not mcc or not mcc.isdigit():
        return None
    return _mcc_table().get(int(mcc))


@lru_cache(maxsize=1)
def _mcc_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for short, ranges in _MCC_RANGES.items():
        for low, high in ranges:
            for code in range(low, high + 1):
                table.setdefault(code, short)
    for short, codes in _MCC_ISO_EXTRA.items():
        for code in codes:
            table.setdefault(code, short)
    return table


def lexicon_hits(tokens: tuple[str, ...]) -> set[str]:
    """Categories whose keywords occur in the tokens (whole, bigram, or inside a compound)."""
    index = keyword_index()
    subs = substring_index()
    hits: set[str] = set()
    for i, tok in enumerate(tokens):
        codes = index.get(tok)
        if codes:
            hits.update(codes)
        if i + 1 < len(tokens):
            codes = index.get(tok + " " + tokens[i + 1])
            if codes:
                hits.update(codes)
        n = len(tok)
        if n >= 8 or (n >= 2 and ord(tok[0]) >= 0x0E00):
            low = 2 if ord(tok[0]) >= 0x0E00 else 6
            for size in range(low, min(n, 14) + (0 if low == 6 else 1)):
                for start in range(n - size + 1):
                    codes = subs.get(tok[start:start + size])
                    if codes:
                        hits.update(codes)
    return hits


@lru_cache(maxsize=100_000)
def token_hits(token: str) -> frozenset[str]:
    """``lexicon_hits`` of one token, cached (hot path)."""
    return frozenset(lexicon_hits((token,)))
