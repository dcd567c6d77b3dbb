"""Build Qala's own demo GTFS feed of Almaty into gtfs_data/almaty/ (run: python gtfs_data/build_almaty.py).

Everything here is authored for the project: the street grid is laid out by hand from the city's real
corridors (coordinates are approximate, good to a block or so), and the timetable is generated from
per-route headways and a bus-speed model. The output is deterministic: re-running it rewrites identical files.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

__all__ = ["CORRIDORS", "ROUTES", "WAYPOINTS", "build_feed", "main"]

FEED_DIR = Path(__file__).resolve().parent / "almaty"
FEED_START = date(2026, 1, 1)
FEED_END = date(2027, 12, 31)
FEED_VERSION = "almaty-demo-2026.1"
AGENCY_ID = "almaty_bus"
NETWORK_ID = "almaty_bus"

Names = tuple[str, str, str]  # (ru, kk, en)

AGENCY_NAMES: Names = ("Автобусы Алматы (демо Qala)", "Алматы автобустары (Qala демо)",
                       "Almaty Buses (Qala demo)")

# Street names as they appear in stop names: Russian genitive, Kazakh, English transliteration.
STREETS: dict[str, Names] = {
    "abay": ("Абая", "Абай", "Abay"),
    "alfarabi": ("Аль-Фараби", "Әл-Фараби", "Al-Farabi"),
    "tolebi": ("Толе би", "Төле би", "Tole Bi"),
    "raiymbek": ("Райымбека", "Райымбек", "Raiymbek"),
    "satpayev": ("Сатпаева", "Сәтбаев", "Satpayev"),
    "zhandosov": ("Жандосова", "Жандосов", "Zhandosov"),
    "timiryazev": ("Тимирязева", "Тимирязев", "Timiryazev"),
    "ablaikhan": ("Абылай хана", "Абылай хан", "Ablai Khan"),
    "nazarbayev": ("Назарбаева", "Назарбаев", "Nazarbayev"),
    "dostyk": ("Достык", "Достық", "Dostyk"),
    "seifullin": ("Сейфуллина", "Сейфуллин", "Seifullin"),
    "rozybakiev": ("Розыбакиева", "Розыбакиев", "Rozybakiev"),
    "gagarin": ("Гагарина", "Гагарин", "Gagarin"),
    "sain": ("Саина", "Саин", "Sain"),
    "baitursynov": ("Байтурсынова", "Байтұрсынұлы", "Baitursynuly"),
    "suyunbay": ("Суюнбая", "Сүйінбай", "Suyunbay"),
    "momyshuly": ("Момышулы", "Момышұлы", "Momyshuly"),
    "beregovoy": ("Берегового", "Береговой", "Beregovoy"),
    "zhubanov": ("Жубанова", "Жұбанов", "Zhubanov"),
    "yassaui": ("Яссауи", "Ясауи", "Yassaui"),
    "altynsarin": ("Алтынсарина", "Алтынсарин", "Altynsarin"),
    "ozal": ("Тургут Озала", "Тұрғұт Озал", "Turgut Ozal"),
    "tlendiyev": ("Тлендиева", "Тілендиев", "Tlendiyev"),
    "utegen": ("Утеген батыра", "Өтеген батыр", "Utegen Batyr"),
    "brusilovsky": ("Брусиловского", "Брусиловский", "Brusilovsky"),
    "zharokov": ("Жарокова", "Жароков", "Zharokov"),
    "manas": ("Манаса", "Манас", "Manas"),
    "auezov": ("Ауэзова", "Әуезов", "Auezov"),
    "baizakov": ("Байзакова", "Байзақов", "Baizakov"),
    "masanchi": ("Масанчи", "Масанчи", "Masanchi"),
    "zheltoksan": ("Желтоксан", "Желтоқсан", "Zheltoksan"),
    "kunaev": ("Кунаева", "Қонаев", "Konayev"),
    "pushkin": ("Пушкина", "Пушкин", "Pushkin"),
    "makataev": ("Макатаева", "Мақатаев", "Makatayev"),
    "zhibekzholy": ("Жибек Жолы", "Жібек жолы", "Zhibek Zholy"),
    "gogol": ("Гоголя", "Гоголь", "Gogol"),
    "aitekebi": ("Айтеке би", "Әйтеке би", "Aiteke Bi"),
    "kazybekbi": ("Казыбек би", "Қазыбек би", "Kazybek Bi"),
    "bogenbay": ("Богенбай батыра", "Бөгенбай батыр", "Bogenbay Batyr"),
    "kabanbay": ("Кабанбай батыра", "Қабанбай батыр", "Kabanbay Batyr"),
    "zhambyl": ("Жамбыла", "Жамбыл", "Zhambyl"),
    "shevchenko": ("Шевченко", "Шевченко", "Shevchenko"),
    "kurmangazy": ("Курмангазы", "Құрманғазы", "Kurmangazy"),
    "zholdasbekov": ("Жолдасбекова", "Жолдасбеков", "Zholdasbekov"),
    "khadzhimukan": ("Хаджи Мукана", "Қажымұқан", "Kazhymukan"),
    "mynbayev": ("Мынбаева", "Мыңбаев", "Mynbayev"),
    "shalyapin": ("Шаляпина", "Шаляпин", "Shalyapin"),
    "khodzhanov": ("Ходжанова", "Қожанов", "Khodzhanov"),
    "sholokhov": ("Шолохова", "Шолохов", "Sholokhov"),
    "severnoe": ("Северное кольцо", "Солтүстік айналма жол", "Northern Ring Road"),
    "kuderin": ("Кудерина", "Күдерин", "Kuderin"),
    "mailin": ("Майлина", "Майлин", "Mailin"),
    "bekmakhanov": ("Бекмаханова", "Бекмаханов", "Bekmakhanov"),
    "kazybayev": ("Казыбаева", "Қазыбаев", "Kazybayev"),
    "akan": ("Акан серы", "Ақан сері", "Akan Seri"),
    "kotelnikov": ("Котельникова", "Котельников", "Kotelnikov"),
    "ryskulov": ("Рыскулова", "Рысқұлов", "Ryskulov"),
    "khetagurov": ("Хетагурова", "Хетагуров", "Khetagurov"),
    "bokeikhan": ("Бокейхана", "Бөкейхан", "Bokeikhan"),
}

# Stops named after a place rather than a crossing (these also override crossing names).
PLACES: dict[str, Names] = {
    "dostyk/zhibekzholy": ("Зелёный базар", "Көк базар", "Green Bazaar"),
    "abay/momyshuly": ("мкр. Жетысу-2", "Жетісу-2 шағын ауданы", "Zhetysu-2 Microdistrict"),
    "sayakhat": ("Автовокзал Саяхат", "Саяхат автовокзалы", "Sayakhat Bus Station"),
    "altynorda": ("Рынок Алтын Орда", "Алтын Орда базары", "Altyn Orda Market"),
    "aigerim1": ("мкр. Айгерим-1", "Айгерім-1 шағын ауданы", "Aigerim-1 Microdistrict"),
    "aigerim2": ("мкр. Айгерим-2", "Айгерім-2 шағын ауданы", "Aigerim-2 Microdistrict"),
    "karasu": ("мкр. Карасу", "Қарасу шағын ауданы", "Karasu Microdistrict"),
    "aksay3": ("мкр. Аксай-3", "Ақсай-3 шағын ауданы", "Aksay-3 Microdistrict"),
    "aksay4": ("мкр. Аксай-4", "Ақсай-4 шағын ауданы", "Aksay-4 Microdistrict"),
    "almaty1": ("Вокзал Алматы-1", "Алматы-1 вокзалы", "Almaty-1 Railway Station"),
    "almaty2": ("Вокзал Алматы-2", "Алматы-2 вокзалы", "Almaty-2 Railway Station"),
    "gornygigant": ("Горный Гигант", "Горный Гигант шағын ауданы", "Gorny Gigant"),
    "samal3": ("мкр. Самал-3", "Самал-3 шағын ауданы", "Samal-3 Microdistrict"),
    "kulager": ("мкр. Кулагер", "Құлагер шағын ауданы", "Kulager Microdistrict"),
    "kurylysshy": ("мкр. Курылысшы", "Құрылысшы шағын ауданы", "Kurylysshy Microdistrict"),
    "zhetysu_con": ("ЦОН Жетысуского района", "Жетісу ауданының ХҚКО", "Zhetysu District Service Centre"),
    "mkr10": ("Микрорайон 10", "10 шағын аудан", "Microdistrict 10"),
    "mkr11": ("Микрорайон 11", "11 шағын аудан", "Microdistrict 11"),
    "mkr12": ("Микрорайон 12", "12 шағын аудан", "Microdistrict 12"),
    "turksib_akimat": ("Акимат Турксибского района", "Түрксіб ауданының әкімдігі", "Turksib District Akimat"),
    "dorozhnik": ("мкр. Дорожник", "Дорожник шағын ауданы", "Dorozhnik Microdistrict"),
    "zhuldyz1": ("мкр. Жулдыз-1", "Жұлдыз-1 шағын ауданы", "Zhuldyz-1 Microdistrict"),
    "zhuldyz2": ("мкр. Жулдыз-2", "Жұлдыз-2 шағын ауданы", "Zhuldyz-2 Microdistrict"),
    "nurlytau": ("БЦ Нурлы Тау", "Нұрлы Тау бизнес орталығы", "Nurly Tau Business Centre"),
    "esentai": ("Esentai Mall", "Esentai Mall сауда орталығы", "Esentai Mall"),
    "kaznu": ("КазНУ им. аль-Фараби", "Әл-Фараби атындағы ҚазҰУ", "Al-Farabi Kazakh National University"),
    "botsad": ("Ботанический сад", "Ботаникалық бақ", "Botanical Garden"),
    "kazakhfilm": ("мкр. Казахфильм", "Қазақфильм шағын ауданы", "Kazakhfilm Microdistrict"),
    "orbita1": ("мкр. Орбита-1", "Орбита-1 шағын ауданы", "Orbita-1 Microdistrict"),
    "orbita3": ("мкр. Орбита-3", "Орбита-3 шағын ауданы", "Orbita-3 Microdistrict"),
    "taugul": ("мкр. Таугуль", "Таугүл шағын ауданы", "Taugul Microdistrict"),
    "abay/dostyk": ("Дворец Республики", "Республика сарайы", "Palace of the Republic"),
    "ablaikhan/zhibekzholy": ("ЦУМ", "Орталық әмбебап дүкен", "TsUM Department Store"),
    "ablaikhan/kabanbay": ("Театр оперы и балета", "Опера және балет театры", "Opera and Ballet Theatre"),
    "abay/baizakov": ("Центральный стадион", "Орталық стадион", "Central Stadium"),
    "abay/auezov": ("Театр им. Ауэзова", "Әуезов атындағы театр", "Auezov Theatre"),
    "abay/altynsarin": ("ст. метро Москва", "Мәскеу метро бекеті", "Moskva Metro Station"),
    "tolebi/tlendiyev": ("Автовокзал Сайран", "Сайран автовокзалы", "Sairan Bus Station"),
    "raiymbek/nazarbayev": ("ст. метро Райымбек батыра", "Райымбек батыр метро бекеті",
                            "Raiymbek Batyr Metro Station"),
    "dostyk/zholdasbekov": ("мкр. Самал-2", "Самал-2 шағын ауданы", "Samal-2 Microdistrict"),
    "timiryazev/manas": ("Атакент", "Атакент көрме орталығы", "Atakent Exhibition Centre"),
    "alfarabi/rozybakiev": ("ТРЦ Mega Alma-Ata", "Mega Alma-Ata сауда орталығы", "Mega Alma-Ata Mall"),
}

# Corridor waypoints along the real streets, (lat, lon). A key "a/b" is the crossing of streets a and b
# (named "A – B"); other keys are places. A "~" prefix marks a shape-only waypoint (a crossing without a
# stop), so shapes follow the streets more densely than the stops.
WAYPOINTS: dict[str, tuple[float, float]] = {
    # abay
    "abay/dostyk": (43.2424, 76.9567), "~abay/kunaev": (43.2420, 76.9528),
    "abay/nazarbayev": (43.2418, 76.9498), "abay/ablaikhan": (43.2414, 76.9453),
    "abay/zheltoksan": (43.2411, 76.9414), "abay/seifullin": (43.2408, 76.9369),
    "abay/masanchi": (43.2404, 76.9325), "abay/baitursynov": (43.2401, 76.9280),
    "abay/baizakov": (43.2396, 76.9225), "abay/auezov": (43.2392, 76.9171), "abay/manas": (43.2387, 76.9111),
    "abay/gagarin": (43.2382, 76.9047), "abay/zharokov": (43.2376, 76.8978),
    "abay/brusilovsky": (43.2373, 76.8933), "abay/rozybakiev": (43.2369, 76.8883),
    "abay/utegen": (43.2365, 76.8832), "abay/tlendiyev": (43.2361, 76.8779), "abay/ozal": (43.2357, 76.8733),
    "abay/altynsarin": (43.2353, 76.8685), "abay/yassaui": (43.2349, 76.8638),
    "abay/zhubanov": (43.2345, 76.8586), "abay/sain": (43.2341, 76.8532),
    "abay/beregovoy": (43.2337, 76.8485), "abay/momyshuly": (43.2328, 76.8378),
    # tolebi
    "tolebi/dostyk": (43.2533, 76.9555), "~tolebi/kunaev": (43.2529, 76.9516),
    "tolebi/nazarbayev": (43.2527, 76.9486), "tolebi/ablaikhan": (43.2524, 76.9441),
    "tolebi/zheltoksan": (43.2520, 76.9402), "tolebi/seifullin": (43.2517, 76.9357),
    "tolebi/masanchi": (43.2513, 76.9313), "tolebi/baitursynov": (43.2510, 76.9268),
    "tolebi/baizakov": (43.2505, 76.9213), "tolebi/auezov": (43.2501, 76.9159),
    "tolebi/manas": (43.2496, 76.9099), "tolebi/gagarin": (43.2491, 76.9035),
    "tolebi/zharokov": (43.2485, 76.8966), "tolebi/brusilovsky": (43.2482, 76.8921),
    "tolebi/rozybakiev": (43.2478, 76.8871), "tolebi/utegen": (43.2474, 76.8820),
    "tolebi/tlendiyev": (43.2470, 76.8767), "tolebi/ozal": (43.2466, 76.8721),
    "tolebi/altynsarin": (43.2462, 76.8673), "tolebi/yassaui": (43.2458, 76.8626),
    "tolebi/zhubanov": (43.2454, 76.8574), "tolebi/sain": (43.2450, 76.8520),
    "tolebi/beregovoy": (43.2446, 76.8473), "tolebi/momyshuly": (43.2437, 76.8366),
    # raiymbek
    "sayakhat": (43.2700, 76.9592), "raiymbek/pushkin": (43.2696, 76.9545),
    "~raiymbek/kunaev": (43.2693, 76.9498), "raiymbek/nazarbayev": (43.2691, 76.9468),
    "raiymbek/ablaikhan": (43.2687, 76.9423), "raiymbek/zheltoksan": (43.2684, 76.9384),
    "raiymbek/seifullin": (43.2680, 76.9339), "raiymbek/masanchi": (43.2677, 76.9295),
    "raiymbek/baitursynov": (43.2673, 76.9250), "raiymbek/baizakov": (43.2669, 76.9195),
    "raiymbek/auezov": (43.2664, 76.9141), "raiymbek/manas": (43.2660, 76.9081),
    "raiymbek/gagarin": (43.2655, 76.9017), "raiymbek/zharokov": (43.2649, 76.8948),
    "raiymbek/brusilovsky": (43.2645, 76.8903), "raiymbek/rozybakiev": (43.2641, 76.8853),
    "raiymbek/utegen": (43.2637, 76.8802), "raiymbek/tlendiyev": (43.2633, 76.8749),
    "raiymbek/ozal": (43.2629, 76.8703), "raiymbek/altynsarin": (43.2626, 76.8655),
    "raiymbek/yassaui": (43.2622, 76.8608), "raiymbek/zhubanov": (43.2618, 76.8556),
    "raiymbek/sain": (43.2613, 76.8502), "raiymbek/beregovoy": (43.2610, 76.8455),
    "raiymbek/momyshuly": (43.2601, 76.8348), "aigerim2": (43.2597, 76.8290), "karasu": (43.2592, 76.8220),
    "altynorda": (43.2586, 76.8150),
    # satpayev
    "satpayev/dostyk": (43.2369, 76.9573), "~satpayev/kunaev": (43.2366, 76.9534),
    "satpayev/nazarbayev": (43.2364, 76.9504), "satpayev/ablaikhan": (43.2360, 76.9459),
    "satpayev/zheltoksan": (43.2357, 76.9420), "satpayev/seifullin": (43.2353, 76.9375),
    "satpayev/masanchi": (43.2350, 76.9331), "satpayev/baitursynov": (43.2346, 76.9286),
    "satpayev/baizakov": (43.2342, 76.9231), "satpayev/auezov": (43.2337, 76.9177),
    "satpayev/manas": (43.2333, 76.9117), "satpayev/gagarin": (43.2327, 76.9053),
    "satpayev/zharokov": (43.2322, 76.8984), "satpayev/brusilovsky": (43.2318, 76.8939),
    "satpayev/rozybakiev": (43.2314, 76.8889), "satpayev/utegen": (43.2310, 76.8838),
    "satpayev/tlendiyev": (43.2306, 76.8785), "satpayev/ozal": (43.2302, 76.8739),
    "satpayev/altynsarin": (43.2298, 76.8691), "satpayev/yassaui": (43.2295, 76.8644),
    "satpayev/zhubanov": (43.2291, 76.8592), "satpayev/sain": (43.2286, 76.8538),
    # zhandosov
    "zhandosov/baitursynov": (43.2292, 76.9292), "zhandosov/baizakov": (43.2287, 76.9237),
    "zhandosov/auezov": (43.2283, 76.9183), "zhandosov/manas": (43.2278, 76.9123),
    "zhandosov/gagarin": (43.2273, 76.9059), "zhandosov/zharokov": (43.2267, 76.8990),
    "zhandosov/brusilovsky": (43.2264, 76.8945), "zhandosov/rozybakiev": (43.2260, 76.8895),
    "zhandosov/utegen": (43.2256, 76.8844), "zhandosov/tlendiyev": (43.2252, 76.8791),
    "zhandosov/ozal": (43.2248, 76.8745), "zhandosov/altynsarin": (43.2244, 76.8697),
    "zhandosov/yassaui": (43.2240, 76.8650), "zhandosov/zhubanov": (43.2236, 76.8598),
    "zhandosov/sain": (43.2232, 76.8544), "zhandosov/beregovoy": (43.2228, 76.8497),
    "zhandosov/momyshuly": (43.2219, 76.8390), "aksay3": (43.2212, 76.8300), "aksay4": (43.2207, 76.8230),
    # timiryazev
    "timiryazev/seifullin": (43.2256, 76.9386), "timiryazev/masanchi": (43.2252, 76.9341),
    "timiryazev/baitursynov": (43.2249, 76.9297), "timiryazev/baizakov": (43.2245, 76.9242),
    "timiryazev/auezov": (43.2240, 76.9188), "timiryazev/manas": (43.2235, 76.9128),
    "timiryazev/gagarin": (43.2230, 76.9064), "timiryazev/zharokov": (43.2225, 76.8994),
    "timiryazev/brusilovsky": (43.2221, 76.8950), "timiryazev/rozybakiev": (43.2217, 76.8900),
    "timiryazev/utegen": (43.2213, 76.8849), "timiryazev/tlendiyev": (43.2209, 76.8796),
    "timiryazev/ozal": (43.2205, 76.8749), "timiryazev/altynsarin": (43.2201, 76.8702),
    "timiryazev/yassaui": (43.2198, 76.8654), "timiryazev/zhubanov": (43.2193, 76.8603),
    "timiryazev/sain": (43.2189, 76.8548), "timiryazev/beregovoy": (43.2185, 76.8502),
    "timiryazev/momyshuly": (43.2177, 76.8395),
    # ablaikhan
    "almaty2": (43.2714, 76.9420), "ablaikhan/makataev": (43.2652, 76.9427),
    "ablaikhan/zhibekzholy": (43.2620, 76.9431), "~ablaikhan/gogol": (43.2596, 76.9433),
    "ablaikhan/aitekebi": (43.2572, 76.9436), "~ablaikhan/kazybekbi": (43.2548, 76.9439),
    "~ablaikhan/bogenbay": (43.2507, 76.9443), "ablaikhan/kabanbay": (43.2477, 76.9447),
    "~ablaikhan/zhambyl": (43.2461, 76.9448), "ablaikhan/shevchenko": (43.2446, 76.9450),
    "~ablaikhan/kurmangazy": (43.2430, 76.9452),
    # nazarbayev
    "nazarbayev/makataev": (43.2656, 76.9472), "nazarbayev/zhibekzholy": (43.2623, 76.9475),
    "~nazarbayev/gogol": (43.2599, 76.9478), "nazarbayev/aitekebi": (43.2576, 76.9481),
    "~nazarbayev/kazybekbi": (43.2552, 76.9483), "~nazarbayev/bogenbay": (43.2510, 76.9488),
    "nazarbayev/kabanbay": (43.2480, 76.9491), "~nazarbayev/zhambyl": (43.2465, 76.9493),
    "nazarbayev/shevchenko": (43.2450, 76.9495), "~nazarbayev/kurmangazy": (43.2434, 76.9496),
    "nazarbayev/zholdasbekov": (43.2334, 76.9507), "nazarbayev/khadzhimukan": (43.2281, 76.9517),
    "alfarabi/nazarbayev": (43.2230, 76.9519), "gornygigant": (43.2160, 76.9528),
    # dostyk
    "dostyk/zhibekzholy": (43.2629, 76.9545), "~dostyk/gogol": (43.2605, 76.9547),
    "dostyk/aitekebi": (43.2581, 76.9550), "~dostyk/kazybekbi": (43.2557, 76.9553),
    "~dostyk/bogenbay": (43.2516, 76.9557), "dostyk/kabanbay": (43.2486, 76.9561),
    "~dostyk/zhambyl": (43.2470, 76.9562), "dostyk/shevchenko": (43.2455, 76.9564),
    "~dostyk/kurmangazy": (43.2439, 76.9566), "dostyk/zholdasbekov": (43.2339, 76.9577),
    "samal3": (43.2292, 76.9582), "alfarabi/dostyk": (43.2252, 76.9587),
    # seifullin
    "almaty1": (43.3395, 76.9480), "seifullin/sholokhov": (43.3352, 76.9462),
    "seifullin/severnoe": (43.3298, 76.9439), "kulager": (43.3252, 76.9420),
    "seifullin/kuderin": (43.3205, 76.9402), "seifullin/mailin": (43.3154, 76.9381),
    "kurylysshy": (43.3105, 76.9366), "seifullin/bekmakhanov": (43.3056, 76.9351),
    "seifullin/kazybayev": (43.3000, 76.9333), "seifullin/akan": (43.2949, 76.9328),
    "seifullin/kotelnikov": (43.2904, 76.9324), "seifullin/ryskulov": (43.2849, 76.9321),
    "zhetysu_con": (43.2810, 76.9326), "seifullin/khetagurov": (43.2770, 76.9330),
    "seifullin/bokeikhan": (43.2728, 76.9334), "seifullin/makataev": (43.2646, 76.9343),
    "seifullin/zhibekzholy": (43.2613, 76.9347), "~seifullin/gogol": (43.2589, 76.9349),
    "seifullin/aitekebi": (43.2565, 76.9352), "~seifullin/kazybekbi": (43.2542, 76.9354),
    "~seifullin/bogenbay": (43.2500, 76.9359), "seifullin/kabanbay": (43.2470, 76.9362),
    "~seifullin/zhambyl": (43.2454, 76.9364), "seifullin/shevchenko": (43.2439, 76.9366),
    "~seifullin/kurmangazy": (43.2424, 76.9367), "seifullin/zholdasbekov": (43.2323, 76.9378),
    "~seifullin/zhandosov": (43.2299, 76.9381), "alfarabi/seifullin": (43.2207, 76.9391),
    # rozybakiev
    "~rozybakiev/bogenbay": (43.2461, 76.8873), "rozybakiev/kabanbay": (43.2431, 76.8877),
    "~rozybakiev/zhambyl": (43.2415, 76.8878), "rozybakiev/shevchenko": (43.2401, 76.8880),
    "~rozybakiev/kurmangazy": (43.2385, 76.8882), "rozybakiev/mynbayev": (43.2171, 76.8905),
    "rozybakiev/shalyapin": (43.2121, 76.8911), "rozybakiev/khodzhanov": (43.2071, 76.8916),
    "alfarabi/rozybakiev": (43.2023, 76.8921),
    # gagarin
    "~gagarin/bogenbay": (43.2474, 76.9037), "gagarin/kabanbay": (43.2444, 76.9040),
    "~gagarin/zhambyl": (43.2429, 76.9042), "gagarin/shevchenko": (43.2414, 76.9043),
    "~gagarin/kurmangazy": (43.2398, 76.9045), "gagarin/mynbayev": (43.2184, 76.9069),
    "gagarin/shalyapin": (43.2134, 76.9074), "alfarabi/gagarin": (43.2078, 76.9081),
    # sain
    "aigerim1": (43.2569, 76.8511), "sain/gogol": (43.2522, 76.8512), "mkr12": (43.2487, 76.8516),
    "mkr11": (43.2414, 76.8524), "mkr10": (43.2377, 76.8528), "sain/mynbayev": (43.2142, 76.8553),
    "sain/shalyapin": (43.2093, 76.8559), "sain/khodzhanov": (43.2043, 76.8564),
    "alfarabi/sain": (43.1986, 76.8571),
    # baitursynov: its crossings are on the abay, satpayev and zhandosov corridors
    # suyunbay
    "suyunbay/bokeikhan": (43.2749, 76.9603), "suyunbay/khetagurov": (43.2792, 76.9612),
    "turksib_akimat": (43.2833, 76.9622), "suyunbay/ryskulov": (43.2874, 76.9631),
    "suyunbay/kotelnikov": (43.2930, 76.9646), "suyunbay/akan": (43.2976, 76.9659),
    "suyunbay/kazybayev": (43.3027, 76.9673), "suyunbay/bekmakhanov": (43.3083, 76.9691),
    "dorozhnik": (43.3132, 76.9707), "suyunbay/mailin": (43.3181, 76.9723),
    "suyunbay/kuderin": (43.3232, 76.9740), "zhuldyz2": (43.3278, 76.9757),
    "suyunbay/severnoe": (43.3325, 76.9774), "zhuldyz1": (43.3375, 76.9794),
    # alfarabi
    "nurlytau": (43.2216, 76.9455), "alfarabi/masanchi": (43.2199, 76.9348), "esentai": (43.2182, 76.9290),
    "alfarabi/baizakov": (43.2166, 76.9252), "kaznu": (43.2140, 76.9195), "botsad": (43.2112, 76.9140),
    "~af2": (43.2062, 76.9040), "alfarabi/zharokov": (43.2052, 76.9016),
    "alfarabi/brusilovsky": (43.2037, 76.8968), "kazakhfilm": (43.2015, 76.8850),
    "orbita1": (43.2006, 76.8785), "orbita3": (43.1999, 76.8720), "taugul": (43.1993, 76.8648),
}

CORRIDORS: dict[str, tuple[str, ...]] = {
    "abay": (
        "abay/dostyk", "~abay/kunaev", "abay/nazarbayev", "abay/ablaikhan", "abay/zheltoksan",
        "abay/seifullin", "abay/masanchi", "abay/baitursynov", "abay/baizakov", "abay/auezov", "abay/manas",
        "abay/gagarin", "abay/zharokov", "abay/brusilovsky", "abay/rozybakiev", "abay/utegen",
        "abay/tlendiyev", "abay/ozal", "abay/altynsarin", "abay/yassaui", "abay/zhubanov", "abay/sain",
        "abay/beregovoy", "abay/momyshuly",
    ),
    "tolebi": (
        "tolebi/dostyk", "~tolebi/kunaev", "tolebi/nazarbayev", "tolebi/ablaikhan", "tolebi/zheltoksan",
        "tolebi/seifullin", "tolebi/masanchi", "tolebi/baitursynov", "tolebi/baizakov", "tolebi/auezov",
        "tolebi/manas", "tolebi/gagarin", "tolebi/zharokov", "tolebi/brusilovsky", "tolebi/rozybakiev",
        "tolebi/utegen", "tolebi/tlendiyev", "tolebi/ozal", "tolebi/altynsarin", "tolebi/yassaui",
        "tolebi/zhubanov", "tolebi/sain", "tolebi/beregovoy", "tolebi/momyshuly",
    ),
    "raiymbek": (
        "sayakhat", "raiymbek/pushkin", "~raiymbek/kunaev", "raiymbek/nazarbayev", "raiymbek/ablaikhan",
        "raiymbek/zheltoksan", "raiymbek/seifullin", "raiymbek/masanchi", "raiymbek/baitursynov",
        "raiymbek/baizakov", "raiymbek/auezov", "raiymbek/manas", "raiymbek/gagarin", "raiymbek/zharokov",
        "raiymbek/brusilovsky", "raiymbek/rozybakiev", "raiymbek/utegen", "raiymbek/tlendiyev",
        "raiymbek/ozal", "raiymbek/altynsarin", "raiymbek/yassaui", "raiymbek/zhubanov", "raiymbek/sain",
        "raiymbek/beregovoy", "raiymbek/momyshuly", "aigerim2", "karasu", "altynorda",
    ),
    "satpayev": (
        "satpayev/dostyk", "~satpayev/kunaev", "satpayev/nazarbayev", "satpayev/ablaikhan",
        "satpayev/zheltoksan", "satpayev/seifullin", "satpayev/masanchi", "satpayev/baitursynov",
        "satpayev/baizakov", "satpayev/auezov", "satpayev/manas", "satpayev/gagarin", "satpayev/zharokov",
        "satpayev/brusilovsky", "satpayev/rozybakiev", "satpayev/utegen", "satpayev/tlendiyev",
        "satpayev/ozal", "satpayev/altynsarin", "satpayev/yassaui", "satpayev/zhubanov", "satpayev/sain",
    ),
    "zhandosov": (
        "zhandosov/baitursynov", "zhandosov/baizakov", "zhandosov/auezov", "zhandosov/manas",
        "zhandosov/gagarin", "zhandosov/zharokov", "zhandosov/brusilovsky", "zhandosov/rozybakiev",
        "zhandosov/utegen", "zhandosov/tlendiyev", "zhandosov/ozal", "zhandosov/altynsarin",
        "zhandosov/yassaui", "zhandosov/zhubanov", "zhandosov/sain", "zhandosov/beregovoy",
        "zhandosov/momyshuly", "aksay3", "aksay4",
    ),
    "timiryazev": (
        "timiryazev/seifullin", "timiryazev/masanchi", "timiryazev/baitursynov", "timiryazev/baizakov",
        "timiryazev/auezov", "timiryazev/manas", "timiryazev/gagarin", "timiryazev/zharokov",
        "timiryazev/brusilovsky", "timiryazev/rozybakiev", "timiryazev/utegen", "timiryazev/tlendiyev",
        "timiryazev/ozal", "timiryazev/altynsarin", "timiryazev/yassaui", "timiryazev/zhubanov",
        "timiryazev/sain", "timiryazev/beregovoy", "timiryazev/momyshuly",
    ),
    "ablaikhan": (
        "almaty2", "raiymbek/ablaikhan", "ablaikhan/makataev", "ablaikhan/zhibekzholy", "~ablaikhan/gogol",
        "ablaikhan/aitekebi", "~ablaikhan/kazybekbi", "tolebi/ablaikhan", "~ablaikhan/bogenbay",
        "ablaikhan/kabanbay", "~ablaikhan/zhambyl", "ablaikhan/shevchenko", "~ablaikhan/kurmangazy",
        "abay/ablaikhan",
    ),
    "nazarbayev": (
        "raiymbek/nazarbayev", "nazarbayev/makataev", "nazarbayev/zhibekzholy", "~nazarbayev/gogol",
        "nazarbayev/aitekebi", "~nazarbayev/kazybekbi", "tolebi/nazarbayev", "~nazarbayev/bogenbay",
        "nazarbayev/kabanbay", "~nazarbayev/zhambyl", "nazarbayev/shevchenko", "~nazarbayev/kurmangazy",
        "abay/nazarbayev", "satpayev/nazarbayev", "nazarbayev/zholdasbekov", "nazarbayev/khadzhimukan",
        "alfarabi/nazarbayev", "gornygigant",
    ),
    "dostyk": (
        "dostyk/zhibekzholy", "~dostyk/gogol", "dostyk/aitekebi", "~dostyk/kazybekbi", "tolebi/dostyk",
        "~dostyk/bogenbay", "dostyk/kabanbay", "~dostyk/zhambyl", "dostyk/shevchenko", "~dostyk/kurmangazy",
        "abay/dostyk", "satpayev/dostyk", "dostyk/zholdasbekov", "samal3", "alfarabi/dostyk",
    ),
    "seifullin": (
        "almaty1", "seifullin/sholokhov", "seifullin/severnoe", "kulager", "seifullin/kuderin",
        "seifullin/mailin", "kurylysshy", "seifullin/bekmakhanov", "seifullin/kazybayev", "seifullin/akan",
        "seifullin/kotelnikov", "seifullin/ryskulov", "zhetysu_con", "seifullin/khetagurov",
        "seifullin/bokeikhan", "raiymbek/seifullin", "seifullin/makataev", "seifullin/zhibekzholy",
        "~seifullin/gogol", "seifullin/aitekebi", "~seifullin/kazybekbi", "tolebi/seifullin",
        "~seifullin/bogenbay", "seifullin/kabanbay", "~seifullin/zhambyl", "seifullin/shevchenko",
        "~seifullin/kurmangazy", "abay/seifullin", "satpayev/seifullin", "seifullin/zholdasbekov",
        "~seifullin/zhandosov", "timiryazev/seifullin", "alfarabi/seifullin",
    ),
    "rozybakiev": (
        "tolebi/rozybakiev", "~rozybakiev/bogenbay", "rozybakiev/kabanbay", "~rozybakiev/zhambyl",
        "rozybakiev/shevchenko", "~rozybakiev/kurmangazy", "abay/rozybakiev", "satpayev/rozybakiev",
        "zhandosov/rozybakiev", "timiryazev/rozybakiev", "rozybakiev/mynbayev", "rozybakiev/shalyapin",
        "rozybakiev/khodzhanov", "alfarabi/rozybakiev",
    ),
    "gagarin": (
        "tolebi/gagarin", "~gagarin/bogenbay", "gagarin/kabanbay", "~gagarin/zhambyl", "gagarin/shevchenko",
        "~gagarin/kurmangazy", "abay/gagarin", "satpayev/gagarin", "zhandosov/gagarin",
        "timiryazev/gagarin", "gagarin/mynbayev", "gagarin/shalyapin", "alfarabi/gagarin",
    ),
    "sain": (
        "raiymbek/sain", "aigerim1", "sain/gogol", "mkr12", "tolebi/sain", "mkr11", "mkr10", "abay/sain",
        "satpayev/sain", "zhandosov/sain", "timiryazev/sain", "sain/mynbayev", "sain/shalyapin",
        "sain/khodzhanov", "alfarabi/sain",
    ),
    "baitursynov": (
        "abay/baitursynov", "satpayev/baitursynov", "zhandosov/baitursynov",
    ),
    "suyunbay": (
        "sayakhat", "suyunbay/bokeikhan", "suyunbay/khetagurov", "turksib_akimat", "suyunbay/ryskulov",
        "suyunbay/kotelnikov", "suyunbay/akan", "suyunbay/kazybayev", "suyunbay/bekmakhanov", "dorozhnik",
        "suyunbay/mailin", "suyunbay/kuderin", "zhuldyz2", "suyunbay/severnoe", "zhuldyz1",
    ),
    "alfarabi": (
        "alfarabi/dostyk", "alfarabi/nazarbayev", "nurlytau", "alfarabi/seifullin", "alfarabi/masanchi",
        "esentai", "alfarabi/baizakov", "kaznu", "botsad", "alfarabi/gagarin", "~af2", "alfarabi/zharokov",
        "alfarabi/brusilovsky", "alfarabi/rozybakiev", "kazakhfilm", "orbita1", "orbita3", "taugul",
        "alfarabi/sain",
    ),
}


@dataclass(frozen=True)
class RouteSpec:
    """One bus route: its path as corridor legs, colours and headways in minutes."""

    short_name: str
    long_names: Names  # (ru, kk, en): terminals, then the main streets in brackets
    legs: tuple[tuple[str, str, str], ...]  # (corridor, from waypoint, to waypoint)
    color: str
    text_color: str
    peak: int  # weekday 07-10 and 17-20
    base: int  # weekday early morning and midday
    evening: int  # weekday after 20:00
    weekend: int
    late: bool = False  # weekday trips keep leaving until 00:30 (GTFS times past 24:00)

    @property
    def route_id(self) -> str:
        return f"R{self.short_name}"


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec(
        "2",
        (
            "Вокзал Алматы-2 – мкр. Жетысу-2 (Абылай хана, Абая)",
            "Алматы-2 вокзалы – Жетісу-2 (Абылай хан, Абай)",
            "Almaty-2 Station – Zhetysu-2 (Ablai Khan, Abay)",
        ),
        (("ablaikhan", "almaty2", "abay/ablaikhan"), ("abay", "abay/ablaikhan", "abay/momyshuly")),
        "D32F2F", "FFFFFF", peak=6, base=12, evening=15, weekend=20, late=True,
    ),
    RouteSpec(
        "12",
        (
            "пр. Достык – ул. Момышулы (Толе би)",
            "Достық даңғылы – Момышұлы көшесі (Төле би)",
            "Dostyk Ave – Momyshuly St (Tole Bi)",
        ),
        (("tolebi", "tolebi/dostyk", "tolebi/momyshuly"),),
        "1976D2", "FFFFFF", peak=8, base=15, evening=20, weekend=25, late=True,
    ),
    RouteSpec(
        "32",
        (
            "Автовокзал Саяхат – Рынок Алтын Орда (Райымбека)",
            "Саяхат автовокзалы – Алтын Орда базары (Райымбек)",
            "Sayakhat Bus Station – Altyn Orda Market (Raiymbek)",
        ),
        (("raiymbek", "sayakhat", "altynorda"),),
        "2E7D32", "FFFFFF", peak=8, base=15, evening=20, weekend=25, late=True,
    ),
    RouteSpec(
        "34",
        (
            "Зелёный базар – ул. Саина (Достык, Аль-Фараби)",
            "Көк базар – Саин көшесі (Достық, Әл-Фараби)",
            "Green Bazaar – Sain St (Dostyk, Al-Farabi)",
        ),
        (
            ("dostyk", "dostyk/zhibekzholy", "alfarabi/dostyk"),
            ("alfarabi", "alfarabi/dostyk", "alfarabi/sain"),
        ),
        "7B1FA2", "FFFFFF", peak=10, base=15, evening=20, weekend=25,
    ),
    RouteSpec(
        "37",
        (
            "ст. метро Райымбек батыра – Горный Гигант (Назарбаева)",
            "Райымбек батыр метросы – Горный Гигант (Назарбаев)",
            "Raiymbek Batyr Metro – Gorny Gigant (Nazarbayev)",
        ),
        (("nazarbayev", "raiymbek/nazarbayev", "gornygigant"),),
        "EF6C00", "000000", peak=10, base=15, evening=20, weekend=25,
    ),
    RouteSpec(
        "45",
        (
            "Вокзал Алматы-1 – пр. Аль-Фараби (Сейфуллина)",
            "Алматы-1 вокзалы – Әл-Фараби даңғылы (Сейфуллин)",
            "Almaty-1 Station – Al-Farabi Ave (Seifullin)",
        ),
        (("seifullin", "almaty1", "alfarabi/seifullin"),),
        "00796B", "FFFFFF", peak=7, base=12, evening=20, weekend=25, late=True,
    ),
    RouteSpec(
        "63",
        (
            "Автовокзал Сайран – ТРЦ Mega Alma-Ata (Розыбакиева)",
            "Сайран автовокзалы – Mega Alma-Ata (Розыбакиев)",
            "Sairan Bus Station – Mega Alma-Ata (Rozybakiev)",
        ),
        (
            ("tolebi", "tolebi/tlendiyev", "tolebi/rozybakiev"),
            ("rozybakiev", "tolebi/rozybakiev", "alfarabi/rozybakiev"),
        ),
        "C2185B", "FFFFFF", peak=10, base=15, evening=20, weekend=25,
    ),
    RouteSpec(
        "79",
        (
            "пр. Аль-Фараби – Вокзал Алматы-2 (Гагарина, Толе би, Абылай хана)",
            "Әл-Фараби даңғылы – Алматы-2 вокзалы (Гагарин, Төле би, Абылай хан)",
            "Al-Farabi Ave – Almaty-2 Station (Gagarin, Tole Bi, Ablai Khan)",
        ),
        (
            ("gagarin", "alfarabi/gagarin", "tolebi/gagarin"),
            ("tolebi", "tolebi/gagarin", "tolebi/ablaikhan"),
            ("ablaikhan", "tolebi/ablaikhan", "almaty2"),
        ),
        "5D4037", "FFFFFF", peak=10, base=15, evening=20, weekend=25,
    ),
    RouteSpec(
        "86",
        (
            "Рынок Алтын Орда – пр. Аль-Фараби (Райымбека, Саина)",
            "Алтын Орда базары – Әл-Фараби даңғылы (Райымбек, Саин)",
            "Altyn Orda Market – Al-Farabi Ave (Raiymbek, Sain)",
        ),
        (("raiymbek", "altynorda", "raiymbek/sain"), ("sain", "raiymbek/sain", "alfarabi/sain")),
        "0277BD", "FFFFFF", peak=10, base=15, evening=20, weekend=25,
    ),
    RouteSpec(
        "92",
        (
            "мкр. Жулдыз-1 – пр. Абая (Суюнбая, Райымбека, Сейфуллина)",
            "Жұлдыз-1 – Абай даңғылы (Сүйінбай, Райымбек, Сейфуллин)",
            "Zhuldyz-1 – Abay Ave (Suyunbay, Raiymbek, Seifullin)",
        ),
        (
            ("suyunbay", "zhuldyz1", "sayakhat"),
            ("raiymbek", "sayakhat", "raiymbek/seifullin"),
            ("seifullin", "raiymbek/seifullin", "abay/seifullin"),
        ),
        "9E9D24", "000000", peak=10, base=15, evening=20, weekend=25,
    ),
    RouteSpec(
        "121",
        (
            "Дворец Республики – мкр. Аксай-4 (Абая, Жандосова)",
            "Республика сарайы – Ақсай-4 (Абай, Жандосов)",
            "Palace of the Republic – Aksay-4 (Abay, Zhandosov)",
        ),
        (
            ("abay", "abay/dostyk", "abay/baitursynov"),
            ("baitursynov", "abay/baitursynov", "zhandosov/baitursynov"),
            ("zhandosov", "zhandosov/baitursynov", "aksay4"),
        ),
        "455A64", "FFFFFF", peak=10, base=15, evening=20, weekend=25,
    ),
    RouteSpec(
        "201",
        (
            "пр. Райымбека – ул. Момышулы (Сейфуллина, Тимирязева)",
            "Райымбек даңғылы – Момышұлы көшесі (Сейфуллин, Тимирязев)",
            "Raiymbek Ave – Momyshuly St (Seifullin, Timiryazev)",
        ),
        (
            ("seifullin", "raiymbek/seifullin", "timiryazev/seifullin"),
            ("timiryazev", "timiryazev/seifullin", "timiryazev/momyshuly"),
        ),
        "E64A19", "FFFFFF", peak=10, base=15, evening=20, weekend=25,
    ),
    RouteSpec(
        "29",
        (
            "пр. Достык – ул. Саина (Сатпаева)",
            "Достық даңғылы – Саин көшесі (Сәтбаев)",
            "Dostyk Ave – Sain St (Satpayev)",
        ),
        (("satpayev", "satpayev/dostyk", "satpayev/sain"),),
        "303F9F", "FFFFFF", peak=10, base=15, evening=20, weekend=25,
    ),
)

# Weekdays that are public holidays in Kazakhstan: weekday service is replaced by weekend service.
HOLIDAYS: tuple[date, ...] = tuple(
    date(year, month, day)
    for year in (2026, 2027)
    for month, day in ((1, 1), (1, 2), (1, 7), (3, 8), (3, 21), (3, 22), (3, 23), (5, 1), (5, 7), (5, 9),
                       (7, 6), (8, 30), (10, 25), (12, 16))
)

LAYOVER_S = 300  # minimum stand time at a terminal before a bus turns back
DWELL_S = 20  # extra stand time at busy transfer stops
CENTRE = (43.2500, 76.9450)  # Almaty's centre; buses are slower within CENTRE_RADIUS_KM of it
CENTRE_RADIUS_KM = 2.5


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon) points in kilometres."""
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dlat, dlon = p2 - p1, math.radians(b[1] - a[1])
    h = math.sin(dlat / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlon / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def is_stop(key: str) -> bool:
    return not key.startswith("~")


def stop_id(key: str) -> str:
    return key.replace("/", "-")


def stop_names(key: str) -> Names:
    """(ru, kk, en) names of a stop: a place, or the crossing "A – B" of two streets."""
    if key in PLACES:
        return PLACES[key]
    first, second = (STREETS[part] for part in key.split("/"))
    return tuple(f"{a} – {b}" for a, b in zip(first, second, strict=True))  # type: ignore[return-value]


def route_path(spec: RouteSpec) -> list[str]:
    """Waypoint keys of the route's direction 0, leg by leg (each leg a slice of a corridor, either way)."""
    path: list[str] = []
    for corridor, start, end in spec.legs:
        points = CORRIDORS[corridor]
        i, j = points.index(start), points.index(end)
        leg = list(points[i : j + 1]) if i <= j else list(points[j : i + 1])[::-1]
        if path and path[-1] != leg[0]:
            raise ValueError(f"route {spec.short_name}: leg {corridor} does not join the previous leg")
        path.extend(leg[1:] if path else leg)
    return path


@dataclass(frozen=True)
class Pattern:
    """One direction of a route: shape points and the stops on them with distances (km)."""

    shape_id: str
    points: list[tuple[float, float]]
    point_km: list[float]
    stops: list[str]
    stop_km: list[float]
    slow: list[bool]  # per stop-to-stop segment: inside the congested centre


def build_pattern(spec: RouteSpec, direction: int) -> Pattern:
    path = route_path(spec)
    if direction == 1:
        path.reverse()
    points = [WAYPOINTS[key] for key in path]
    km = [0.0]
    for a, b in itertools.pairwise(points):
        km.append(km[-1] + haversine_km(a, b))
    stops = [key for key in path if is_stop(key)]
    stop_km = [round(km[i], 3) for i, key in enumerate(path) if is_stop(key)]
    slow = []
    for first, second in itertools.pairwise(stops):
        (lat1, lon1), (lat2, lon2) = WAYPOINTS[first], WAYPOINTS[second]
        mid = ((lat1 + lat2) / 2, (lon1 + lon2) / 2)
        slow.append(haversine_km(mid, CENTRE) < CENTRE_RADIUS_KM)
    return Pattern(f"{spec.route_id}-{direction}", points, [round(x, 3) for x in km], stops, stop_km, slow)


def departures(spec: RouteSpec, service_id: str, offset_min: int) -> list[int]:
    """Departure minutes from a terminal: peak, midday and evening headways on weekdays, flatter weekends."""
    minutes: list[int] = []
    if service_id == "weekday":
        t, last = 360 + offset_min, (24 * 60 + 30 if spec.late else 23 * 60 + 15)
        while t <= last:
            minutes.append(t)
            if 420 <= t < 600 or 1020 <= t < 1200:
                t += spec.peak
            elif t < 1200:
                t += spec.base
            else:
                t += spec.evening
    else:
        t, last = 390 + offset_min, 23 * 60
        while t <= last:
            minutes.append(t)
            t += spec.weekend + (5 if t < 480 or t >= 1260 else 0)
    return minutes


def speed_kmh(service_id: str, dep_s: int) -> float:
    """Average bus speed including dwell: slowest in the weekday peaks, fastest late at night."""
    hour = dep_s / 3600
    if service_id == "weekend":
        return 21.0 if hour < 9 or hour >= 20 else 19.0
    if 7 <= hour < 10 or 17 <= hour < 20:
        return 16.5
    if hour < 7 or hour >= 22:
        return 22.0
    return 20.0 if hour >= 20 else 18.5


def stop_times_for(pattern: Pattern, service_id: str, dep_s: int, busy: set[str]) -> list[tuple[int, int]]:
    """(arrival, departure) seconds at each stop of one trip."""
    speed = speed_kmh(service_id, dep_s)
    times = [(dep_s, dep_s)]
    clock = float(dep_s)
    last = len(pattern.stops) - 1
    for i in range(1, last + 1):
        seg_km = pattern.stop_km[i] - pattern.stop_km[i - 1]
        clock += seg_km / (speed * (0.88 if pattern.slow[i - 1] else 1.0)) * 3600
        arrival = max(round(clock), times[-1][1] + 1)
        dwell = DWELL_S if i < last and pattern.stops[i] in busy else 0
        times.append((arrival, arrival + dwell))
        clock = arrival + dwell
    return times


def gtfs_time(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass(frozen=True)
class Trip:
    trip_id: str
    route_id: str
    service_id: str
    direction: int
    headsign: str
    block_id: str
    shape_id: str
    stops: list[str]
    stop_km: list[float]
    times: list[tuple[int, int]]


def schedule_route(index: int, spec: RouteSpec, patterns: Sequence[Pattern], busy: set[str]) -> list[Trip]:
    """All trips of one route, both services, chained into blocks (one block = one bus's day)."""
    trips: list[Trip] = []
    for service_id, tag in (("weekday", "wd"), ("weekend", "we")):
        runs: list[tuple[int, int, list[tuple[int, int]]]] = []
        for direction, pattern in enumerate(patterns):
            offset = (index * 3 + direction * 4) % 9
            for minute in departures(spec, service_id, offset):
                runs.append((minute * 60, direction, stop_times_for(pattern, service_id, minute * 60, busy)))
        runs.sort(key=lambda run: (run[0], run[1]))
        # buses waiting at each terminal: terminal d is where direction d starts
        waiting: list[list[tuple[int, int]]] = [[], []]
        vehicles = 0
        counters = [0, 0]
        for dep_s, direction, times in runs:
            stand = waiting[direction]
            if stand and stand[0][0] <= dep_s:
                _, bus = heapq.heappop(stand)
            else:
                vehicles += 1
                bus = vehicles
            heapq.heappush(waiting[1 - direction], (times[-1][1] + LAYOVER_S, bus))
            counters[direction] += 1
            pattern = patterns[direction]
            trips.append(Trip(
                trip_id=f"{spec.route_id}-{tag}-{direction}-{counters[direction]:03d}",
                route_id=spec.route_id, service_id=service_id, direction=direction,
                headsign=stop_names(pattern.stops[-1])[0], block_id=f"{spec.route_id}-{tag}-{bus:02d}",
                shape_id=pattern.shape_id, stops=pattern.stops, stop_km=pattern.stop_km, times=times,
            ))
    return trips


def write_table(folder: Path, name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write one GTFS table (UTF-8, LF line ends); returns the number of data rows."""
    count = 0
    with (folder / f"{name}.txt").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def fare_tables() -> dict[str, tuple[list[str], list[list[str]]]]:
    """GTFS Fares v2 for Almaty 2024: every boarding is paid with the Onay card (or the Onay app QR).

    Almaty has no free transfer: the transfer rule uses fare_transfer_type 1 ("A + AB + B") with no transfer
    product, so AB costs nothing and a rider changing buses pays both legs in full. Monthly passes are listed
    as products; their 30-day validity is project config, since Fares v2 has no duration for products.
    """
    categories = [
        ["standard", "Полный тариф", "1"], ["student", "Студент", "0"], ["school", "Школьник", "0"],
        ["pensioner", "Пенсионер", "0"], ["pensioner_75", "Пенсионер старше 75 лет", "0"],
        ["large_family", "Многодетная мать", "0"], ["veteran", "Ветеран Великой Отечественной войны", "0"],
        ["disability", "Лица с инвалидностью 1–2 группы и дети с инвалидностью", "0"],
    ]
    products = [
        ["ride", "Разовая поездка", "standard", "onay_card", "120.00"],
        ["ride", "Разовая поездка", "standard", "onay_qr", "120.00"],
        *[["ride_concession", "Разовая поездка (льготная)", cat, "onay_card", "60.00"]
          for cat in ("student", "school", "pensioner", "large_family")],
        *[["ride_free", "Бесплатный проезд", cat, "onay_card", "0.00"]
          for cat in ("veteran", "pensioner_75", "disability")],
        *[["pass_month", "Проездной на месяц", cat, "onay_card", amount]
          for cat, amount in (("standard", "9900.00"), ("student", "4200.00"), ("school", "2000.00"),
                              ("pensioner", "3000.00"))],
    ]
    return {
        "fare_media": (["fare_media_id", "fare_media_name", "fare_media_type"],
                       [["onay_card", "Карта Onay", "2"], ["onay_qr", "QR-билет в приложении Onay", "4"]]),
        "rider_categories": (["rider_category_id", "rider_category_name", "is_default_fare_category"],
                             categories),
        "fare_products": (["fare_product_id", "fare_product_name", "rider_category_id", "fare_media_id",
                           "amount", "currency"], [[*row, "KZT"] for row in products]),
        "networks": (["network_id", "network_name"], [[NETWORK_ID, "Автобусы Алматы"]]),
        "fare_leg_rules": (["leg_group_id", "network_id", "fare_product_id"],
                           [["bus_ride", NETWORK_ID, product] for product in
                            ("ride", "ride_concession", "ride_free", "pass_month")]),
        "fare_transfer_rules": (["from_leg_group_id", "to_leg_group_id", "transfer_count",
                                 "fare_transfer_type"], [["bus_ride", "bus_ride", "-1", "1"]]),
    }


def calendar_rows() -> tuple[list[list[str]], list[list[str]]]:
    start, end = FEED_START.strftime("%Y%m%d"), FEED_END.strftime("%Y%m%d")
    calendar = [["weekday", "1", "1", "1", "1", "1", "0", "0", start, end],
                ["weekend", "0", "0", "0", "0", "0", "1", "1", start, end]]
    exceptions: list[list[str]] = []
    for day in sorted(HOLIDAYS):
        if day.weekday() < 5:
            stamp = day.strftime("%Y%m%d")
            exceptions += [["weekday", stamp, "2"], ["weekend", stamp, "1"]]
    return calendar, exceptions


def build_feed(out: Path = FEED_DIR) -> dict[str, int]:
    """Write the Almaty demo feed's .txt files into ``out``; returns the row count of each file."""
    out.mkdir(parents=True, exist_ok=True)
    patterns = {spec.route_id: [build_pattern(spec, 0), build_pattern(spec, 1)] for spec in ROUTES}
    served = Counter(key for spec in ROUTES for key in set(patterns[spec.route_id][0].stops))
    busy = {key for key, routes in served.items() if routes >= 3}
    trips = [trip for index, spec in enumerate(ROUTES)
             for trip in schedule_route(index, spec, patterns[spec.route_id], busy)]
    stop_keys = [key for key in WAYPOINTS if key in served]
    counts: dict[str, int] = {}

    counts["agency"] = write_table(
        out, "agency", ["agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang"],
        [[AGENCY_ID, AGENCY_NAMES[0], "https://example.com/qala/almaty", "Asia/Almaty", "ru"]])
    counts["feed_info"] = write_table(
        out, "feed_info", ["feed_publisher_name", "feed_publisher_url", "feed_lang", "feed_start_date",
                           "feed_end_date", "feed_version", "feed_contact_email"],
        [["Qala project (authored demo feed)", "https://example.com/qala", "ru",
          FEED_START.strftime("%Y%m%d"), FEED_END.strftime("%Y%m%d"), FEED_VERSION, "demo-feed@example.com"]])
    counts["stops"] = write_table(
        out, "stops", ["stop_id", "stop_code", "stop_name", "stop_lat", "stop_lon", "location_type"],
        [[stop_id(key), str(1001 + n), stop_names(key)[0], f"{WAYPOINTS[key][0]:.4f}",
          f"{WAYPOINTS[key][1]:.4f}", "0"] for n, key in enumerate(stop_keys)])
    counts["routes"] = write_table(
        out, "routes", ["route_id", "agency_id", "route_short_name", "route_long_name", "route_type",
                        "route_color", "route_text_color", "route_sort_order"],
        [[spec.route_id, AGENCY_ID, spec.short_name, spec.long_names[0], "3",
          spec.color, spec.text_color, str(int(spec.short_name))] for spec in ROUTES])
    counts["trips"] = write_table(
        out, "trips", ["route_id", "service_id", "trip_id", "trip_headsign", "direction_id", "block_id",
                       "shape_id"],
        [[t.route_id, t.service_id, t.trip_id, t.headsign, str(t.direction), t.block_id, t.shape_id]
         for t in trips])
    counts["stop_times"] = write_table(
        out, "stop_times", ["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence",
                            "shape_dist_traveled"],
        ([t.trip_id, gtfs_time(arr), gtfs_time(dep), stop_id(key), str(seq), f"{km:.3f}"]
         for t in trips
         for seq, (key, km, (arr, dep)) in enumerate(zip(t.stops, t.stop_km, t.times, strict=True), start=1)))
    counts["shapes"] = write_table(
        out, "shapes",
        ["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence", "shape_dist_traveled"],
        ([p.shape_id, f"{lat:.4f}", f"{lon:.4f}", str(seq), f"{km:.3f}"]
         for spec in ROUTES for p in patterns[spec.route_id]
         for seq, ((lat, lon), km) in enumerate(zip(p.points, p.point_km, strict=True), start=1)))
    calendar, exceptions = calendar_rows()
    counts["calendar"] = write_table(
        out, "calendar", ["service_id", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                          "sunday", "start_date", "end_date"], calendar)
    counts["calendar_dates"] = write_table(out, "calendar_dates", ["service_id", "date", "exception_type"],
                                           exceptions)
    counts["translations"] = write_table(
        out, "translations",
        ["table_name", "field_name", "language", "translation", "record_id", "field_value"],
        translation_rows(stop_keys, patterns, trips))
    for name, (header, rows) in fare_tables().items():
        counts[name] = write_table(out, name, header, rows)
    counts["route_networks"] = write_table(out, "route_networks", ["network_id", "route_id"],
                                           [[NETWORK_ID, spec.route_id] for spec in ROUTES])
    return counts


def translation_rows(stop_keys: Sequence[str], patterns: dict[str, list[Pattern]],
                     trips: Sequence[Trip]) -> list[list[str]]:
    """kk/ru/en for agency, stop and route names by record_id; trip headsigns by field_value."""
    languages = ("ru", "kk", "en")
    rows: list[list[str]] = []
    rows += [["agency", "agency_name", lang, name, AGENCY_ID, ""]
             for lang, name in zip(languages, AGENCY_NAMES, strict=True)]
    for key in stop_keys:
        rows += [["stops", "stop_name", lang, name, stop_id(key), ""]
                 for lang, name in zip(languages, stop_names(key), strict=True)]
    for spec in ROUTES:
        rows += [["routes", "route_long_name", lang, name, spec.route_id, ""]
                 for lang, name in zip(languages, spec.long_names, strict=True)]
    terminals = dict.fromkeys(p.stops[-1] for spec in ROUTES for p in patterns[spec.route_id])
    for key in terminals:
        names = stop_names(key)
        rows += [["trips", "trip_headsign", lang, name, "", names[0]]
                 for lang, name in zip(languages, names, strict=True)]
    assert {t.headsign for t in trips} <= {stop_names(key)[0] for key in terminals}
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=FEED_DIR, help="folder for the .txt files")
    args = parser.parse_args(argv)
    counts = build_feed(args.out)
    print(", ".join(f"{name}: {n}" for name, n in counts.items()))


if __name__ == "__main__":
    main()
