/* i18n.js - the message catalogues (Kyrgyz, Russian, English), the choice of
 * language (the browser's first, then the switch, remembered on this device)
 * and locale formats of dates, numbers and durations, in Asia/Bishkek time
 * unless the browser names a time zone of its own.
 * Terms follow those of harm-reduction programmes in Kyrgyzstan: снижение
 * вреда / зыянды азайтуу, аутрич, кардар, жолдомо / направление, пробация. */
'use strict';
(function (R) {
  const C = {};

  C.en = {
    'app.title': 'Referrals — harm reduction and legal support',
    'skip': 'Skip to content', 'language': 'Language', 'loading': 'Loading…',
    'signin.title': 'Sign in', 'signin.label': 'Sign-in code or token',
    'signin.help': 'Type the 8-character code your supervisor gave you (for example K7QM-4XTD), or paste a token.',
    'signin.button': 'Sign in', 'signin.empty': 'Type your code first.',
    'signin.failed': 'That code or token did not work. Codes work once and for 15 minutes: ask your supervisor for a new one.',
    'signin.rate_limited': 'Too many attempts. Wait a minute and try again.',
    'signin.expired': 'Your session has ended. Sign in again.', 'signin.signed_out': 'You have signed out.',
    'signout.button': 'Sign out',
    'nav.inbox': 'My referrals', 'nav.overview': 'Overdue and unassigned', 'nav.report': 'Follow-up report',
    'nav.workers': 'Workers', 'nav.back_inbox': 'Back to my referrals',
    'inbox.title': 'My referrals', 'inbox.offers': 'New offers', 'inbox.mine': 'In my care',
    'inbox.overdue': 'Overdue', 'inbox.no_offers': 'No new offers.', 'inbox.no_mine': 'Nothing in your care right now.',
    'inbox.no_overdue': 'Nothing overdue.', 'inbox.overdue_one': 'A deadline for this referral has passed.',
    'need.harm_reduction': 'Harm reduction', 'need.legal_support': 'Legal support',
    'status.unassigned': 'Unassigned', 'status.offered': 'Offered', 'status.accepted': 'Accepted',
    'status.in_progress': 'In contact', 'status.on_hold': 'On hold', 'status.completed': 'Completed',
    'status.failed': 'Closed without result', 'status.declined': 'Declined', 'status.expired': 'Offer expired',
    'status.cancelled': 'Cancelled', 'status.reassigned': 'Reassigned',
    'urgency.normal': 'Normal', 'urgency.urgent': 'Urgent', 'region.label': 'Region',
    'offer.expires': 'Answer by', 'time.accepted': 'Accepted', 'time.first_contact': 'First contact',
    'time.ended': 'Closed',
    'field.client': 'Client', 'gender.f': 'woman', 'gender.m': 'man', 'gender.x': 'another gender',
    'field.status': 'Status', 'field.urgency': 'Urgency', 'field.languages': 'Client speaks', 'field.outcome': 'Outcome',
    'action.accept': 'Accept', 'action.decline': 'Decline', 'action.decline_confirm': 'Decline the offer',
    'action.contact_attempt': 'Tried to reach the client', 'action.contact_made': 'Reached the client',
    'action.hold': 'Put on hold', 'action.resume': 'Resume', 'action.complete': 'Close with an outcome',
    'action.complete_confirm': 'Close the referral', 'action.fail': 'Close without result',
    'action.fail_confirm': 'Close without result', 'action.reassign': 'Reassign',
    'action.pending': 'Sending…', 'action.done': 'Saved.', 'action.retry': 'Try again',
    'actions.title': 'Actions',
    'decline.reason': 'Reason', 'decline.no_capacity': 'I cannot take more clients now',
    'decline.outside_area': 'Outside the area I serve', 'decline.language': 'I do not speak the client\u2019s language',
    'decline.conflict_of_interest': 'Conflict of interest', 'decline.other': 'Other reason',
    'complete.outcome': 'Outcome', 'outcome.linked_to_services': 'Linked to services',
    'outcome.engaged': 'Engaged, receiving services', 'outcome.declined_services': 'Declined services',
    'outcome.other': 'Other',
    'fail.reason': 'Reason', 'fail.lost_contact': 'Lost contact', 'fail.client_declined': 'Client declined',
    'fail.detained': 'Client detained', 'fail.other': 'Other',
    'detail.label': 'Comment (optional, seen only by you and your supervisors)',
    'contact.title': 'Contact', 'contact.call': 'Call', 'contact.note': 'Note from probation',
    'error.network': 'No connection. Nothing was lost: try again.', 'error.generic': 'Something went wrong. Try again.',
    'error.invalid_transition': 'This referral has changed in the meantime. Reload the page.',
    'error.not_found': 'This referral is not (or no longer) yours.', 'error.load': 'The page could not be loaded.',
    'other.title': 'Nothing here for this account',
    'other.body': 'These pages are for outreach workers and supervisors. Offices and administrators use the API.',
    'overview.title': 'Overdue and unassigned', 'overview.overdue': 'Overdue', 'overview.unassigned': 'Unassigned',
    'list.empty': 'None.', 'worker.unknown': 'another organisation',
    'col.need': 'Service', 'col.worker': 'Worker', 'col.created': 'Created', 'col.action': 'Action',
    'col.kind': 'Service', 'col.regions': 'Regions', 'col.load': 'Open / capacity', 'col.sign_in': 'Sign-in code',
    'col.offers': 'Offers', 'col.assignments': 'Assignments',
    'reassign.worker': 'New worker', 'reassign.reason': 'Reason (required)', 'reassign.confirm': 'Reassign',
    'reassign.reason_required': 'Give a reason.', 'reassign.no_worker': 'No available worker of this service.',
    'reassign.done': 'Reassigned.', 'reassign.failed': 'Could not reassign.',
    'report.title': 'Follow-up report', 'report.filters': 'Report filters', 'report.from': 'From',
    'report.to': 'To (inclusive)', 'report.group_by': 'Group by', 'report.apply': 'Show',
    'report.csv': 'Download CSV', 'report.no_data': 'No data for this period.',
    'report.period': '{from} – {to}, times in {tz}', 'report.table': 'Follow-up by {by}',
    'report.table_title': 'Figures',
    'group.organisation': 'organisation', 'group.region': 'region', 'group.office': 'probation office',
    'group.worker': 'worker', 'group.need': 'service', 'group.none': '(none)',
    'sec.accept': 'Accept', 'sec.first_contact': 'First contact',
    'metric.met': 'met', 'metric.on_time': 'on time', 'metric.missed': 'missed', 'metric.on_time_rate': 'on-time rate',
    'metric.median_seconds': 'median', 'metric.p90_seconds': '90th percentile',
    'chart.accept': 'Time to accept an offer, by {by}', 'chart.first_contact': 'Time from acceptance to first contact, by {by}',
    'chart.weeks': 'On-time rate, week by week', 'chart.side': '(right: median / 90th percentile)',
    'bucket.lt': 'under {d}', 'bucket.ge': '{d} or more',
    'workers.title': 'Workers', 'workers.issue': 'Issue a sign-in code',
    'workers.help': 'A code lets a worker sign in on a phone. Read it out or send it by SMS; it works once, for 15 minutes.',
    'workers.valid_until': 'valid until {t}', 'workers.active': 'Active', 'workers.inactive': 'Inactive',
    'workers.on_leave': 'On leave',
    'unit.d': '{n} d', 'unit.h': '{n} h', 'unit.min': '{n} min', 'unit.s': '{n} s'
  };

  C.ru = {
    'app.title': 'Направления — снижение вреда и юридическая помощь',
    'skip': 'Перейти к содержанию', 'language': 'Язык', 'loading': 'Загрузка…',
    'signin.title': 'Вход', 'signin.label': 'Код входа или токен',
    'signin.help': 'Введите 8-значный код, который дал вам супервизор (например, K7QM-4XTD), или вставьте токен.',
    'signin.button': 'Войти', 'signin.empty': 'Сначала введите код.',
    'signin.failed': 'Код или токен не подошёл. Код действует один раз и 15 минут — попросите у супервизора новый.',
    'signin.rate_limited': 'Слишком много попыток. Подождите минуту и попробуйте снова.',
    'signin.expired': 'Сеанс закончился. Войдите снова.', 'signin.signed_out': 'Вы вышли из системы.',
    'signout.button': 'Выйти',
    'nav.inbox': 'Мои направления', 'nav.overview': 'Просроченные и без исполнителя', 'nav.report': 'Отчёт по срокам',
    'nav.workers': 'Сотрудники', 'nav.back_inbox': 'К моим направлениям',
    'inbox.title': 'Мои направления', 'inbox.offers': 'Новые предложения', 'inbox.mine': 'В работе у меня',
    'inbox.overdue': 'Просроченные', 'inbox.no_offers': 'Новых предложений нет.', 'inbox.no_mine': 'Сейчас у вас нет клиентов в работе.',
    'inbox.no_overdue': 'Просроченных нет.', 'inbox.overdue_one': 'Срок по этому направлению прошёл.',
    'need.harm_reduction': 'Снижение вреда', 'need.legal_support': 'Юридическая помощь',
    'status.unassigned': 'Без исполнителя', 'status.offered': 'Предложено', 'status.accepted': 'Принято',
    'status.in_progress': 'На связи', 'status.on_hold': 'Приостановлено', 'status.completed': 'Завершено',
    'status.failed': 'Закрыто без результата', 'status.declined': 'Отклонено', 'status.expired': 'Срок ответа истёк',
    'status.cancelled': 'Отменено', 'status.reassigned': 'Передано другому',
    'urgency.normal': 'Обычное', 'urgency.urgent': 'Срочное', 'region.label': 'Регион',
    'offer.expires': 'Ответить до', 'time.accepted': 'Принято', 'time.first_contact': 'Первый контакт',
    'time.ended': 'Закрыто',
    'field.client': 'Клиент', 'gender.f': 'женщина', 'gender.m': 'мужчина', 'gender.x': 'другой гендер',
    'field.status': 'Статус', 'field.urgency': 'Срочность', 'field.languages': 'Язык клиента', 'field.outcome': 'Результат',
    'action.accept': 'Принять', 'action.decline': 'Отказаться', 'action.decline_confirm': 'Отказаться от направления',
    'action.contact_attempt': 'Пытался(ась) связаться', 'action.contact_made': 'Связался(ась) с клиентом',
    'action.hold': 'Приостановить', 'action.resume': 'Возобновить', 'action.complete': 'Закрыть с результатом',
    'action.complete_confirm': 'Закрыть направление', 'action.fail': 'Закрыть без результата',
    'action.fail_confirm': 'Закрыть без результата', 'action.reassign': 'Передать другому',
    'action.pending': 'Отправка…', 'action.done': 'Сохранено.', 'action.retry': 'Повторить',
    'actions.title': 'Действия',
    'decline.reason': 'Причина', 'decline.no_capacity': 'Сейчас не могу взять ещё клиента',
    'decline.outside_area': 'Не мой район', 'decline.language': 'Не владею языком клиента',
    'decline.conflict_of_interest': 'Конфликт интересов', 'decline.other': 'Другая причина',
    'complete.outcome': 'Результат', 'outcome.linked_to_services': 'Направлен(а) в службы',
    'outcome.engaged': 'Вовлечён(а), получает услуги', 'outcome.declined_services': 'Отказался(ась) от услуг',
    'outcome.other': 'Другое',
    'fail.reason': 'Причина', 'fail.lost_contact': 'Связь потеряна', 'fail.client_declined': 'Клиент отказался',
    'fail.detained': 'Клиент задержан', 'fail.other': 'Другое',
    'detail.label': 'Комментарий (необязательно; видят только вы и ваши супервизоры)',
    'contact.title': 'Контакт', 'contact.call': 'Позвонить', 'contact.note': 'Заметка от пробации',
    'error.network': 'Нет связи. Ничего не потеряно — попробуйте снова.', 'error.generic': 'Что-то пошло не так. Попробуйте снова.',
    'error.invalid_transition': 'Направление за это время изменилось. Обновите страницу.',
    'error.not_found': 'Это направление не ваше (или уже не ваше).', 'error.load': 'Не удалось загрузить страницу.',
    'other.title': 'Для этой учётной записи здесь ничего нет',
    'other.body': 'Эти страницы — для аутрич-работников и супервизоров. Органы пробации и администраторы работают через API.',
    'overview.title': 'Просроченные и без исполнителя', 'overview.overdue': 'Просроченные', 'overview.unassigned': 'Без исполнителя',
    'list.empty': 'Нет.', 'worker.unknown': 'другая организация',
    'col.need': 'Услуга', 'col.worker': 'Сотрудник', 'col.created': 'Создано', 'col.action': 'Действие',
    'col.kind': 'Услуга', 'col.regions': 'Регионы', 'col.load': 'В работе / максимум', 'col.sign_in': 'Код входа',
    'col.offers': 'Предложения', 'col.assignments': 'Направления',
    'reassign.worker': 'Новый исполнитель', 'reassign.reason': 'Причина (обязательно)', 'reassign.confirm': 'Передать',
    'reassign.reason_required': 'Укажите причину.', 'reassign.no_worker': 'Нет свободных сотрудников по этой услуге.',
    'reassign.done': 'Передано.', 'reassign.failed': 'Не удалось передать.',
    'report.title': 'Отчёт по срокам', 'report.filters': 'Фильтры отчёта', 'report.from': 'С',
    'report.to': 'По (включительно)', 'report.group_by': 'Группировать по', 'report.apply': 'Показать',
    'report.csv': 'Скачать CSV', 'report.no_data': 'За этот период данных нет.',
    'report.period': '{from} – {to}, время: {tz}', 'report.table': 'Сроки по признаку: {by}',
    'report.table_title': 'Показатели',
    'group.organisation': 'организация', 'group.region': 'регион', 'group.office': 'орган пробации',
    'group.worker': 'сотрудник', 'group.need': 'услуга', 'group.none': '(нет)',
    'sec.accept': 'Принятие', 'sec.first_contact': 'Первый контакт',
    'metric.met': 'выполнено', 'metric.on_time': 'в срок', 'metric.missed': 'просрочено', 'metric.on_time_rate': 'доля в срок',
    'metric.median_seconds': 'медиана', 'metric.p90_seconds': '90-й процентиль',
    'chart.accept': 'Время до принятия направления, по признаку: {by}',
    'chart.first_contact': 'Время от принятия до первого контакта, по признаку: {by}',
    'chart.weeks': 'Доля в срок по неделям', 'chart.side': '(справа: медиана / 90-й процентиль)',
    'bucket.lt': 'меньше {d}', 'bucket.ge': '{d} и больше',
    'workers.title': 'Сотрудники', 'workers.issue': 'Выдать код входа',
    'workers.help': 'По коду сотрудник входит с телефона. Продиктуйте его или отправьте SMS; код действует один раз, 15 минут.',
    'workers.valid_until': 'действует до {t}', 'workers.active': 'Работает', 'workers.inactive': 'Отключён',
    'workers.on_leave': 'В отпуске',
    'unit.d': '{n} дн.', 'unit.h': '{n} ч', 'unit.min': '{n} мин', 'unit.s': '{n} с'
  };

  C.ky = {
    'app.title': 'Жолдомолор — зыянды азайтуу жана юридикалык жардам',
    'skip': 'Негизги бөлүккө өтүү', 'language': 'Тил', 'loading': 'Жүктөлүүдө…',
    'signin.title': 'Кирүү', 'signin.label': 'Кирүү коду же токен',
    'signin.help': 'Супервизор берген 8 белгиден турган кодду жазыңыз (мисалы, K7QM-4XTD) же токенди коюңуз.',
    'signin.button': 'Кирүү', 'signin.empty': 'Адегенде кодду жазыңыз.',
    'signin.failed': 'Код же токен туура келген жок. Код бир жолу жана 15 мүнөт гана иштейт — супервизордон жаңысын сураңыз.',
    'signin.rate_limited': 'Аракет өтө көп болду. Бир мүнөт күтүп, кайра аракет кылыңыз.',
    'signin.expired': 'Сеанс бүттү. Кайра кириңиз.', 'signin.signed_out': 'Сиз системадан чыктыңыз.',
    'signout.button': 'Чыгуу',
    'nav.inbox': 'Менин жолдомолорум', 'nav.overview': 'Мөөнөтү өткөн жана аткаруучусу жоктор',
    'nav.report': 'Мөөнөттөр боюнча отчёт', 'nav.workers': 'Кызматкерлер', 'nav.back_inbox': 'Менин жолдомолорума',
    'inbox.title': 'Менин жолдомолорум', 'inbox.offers': 'Жаңы сунуштар', 'inbox.mine': 'Менин ишимде',
    'inbox.overdue': 'Мөөнөтү өткөндөр', 'inbox.no_offers': 'Жаңы сунуштар жок.', 'inbox.no_mine': 'Азыр ишиңизде кардар жок.',
    'inbox.no_overdue': 'Мөөнөтү өткөн жолдомо жок.', 'inbox.overdue_one': 'Бул жолдомонун мөөнөтү өтүп кетти.',
    'need.harm_reduction': 'Зыянды азайтуу', 'need.legal_support': 'Юридикалык жардам',
    'status.unassigned': 'Аткаруучусу жок', 'status.offered': 'Сунушталды', 'status.accepted': 'Кабыл алынды',
    'status.in_progress': 'Байланышта', 'status.on_hold': 'Убактылуу токтотулду', 'status.completed': 'Аякталды',
    'status.failed': 'Натыйжасыз жабылды', 'status.declined': 'Баш тартылды', 'status.expired': 'Жооп берүү мөөнөтү өттү',
    'status.cancelled': 'Жокко чыгарылды', 'status.reassigned': 'Башкага өткөрүлдү',
    'urgency.normal': 'Кадимки', 'urgency.urgent': 'Шашылыш', 'region.label': 'Аймак',
    'offer.expires': 'Жооп берүү мөөнөтү', 'time.accepted': 'Кабыл алынды', 'time.first_contact': 'Биринчи байланыш',
    'time.ended': 'Жабылды',
    'field.client': 'Кардар', 'gender.f': 'аял', 'gender.m': 'эркек', 'gender.x': 'башка гендер',
    'field.status': 'Абалы', 'field.urgency': 'Шашылыштыгы', 'field.languages': 'Кардардын тили', 'field.outcome': 'Натыйжасы',
    'action.accept': 'Кабыл алуу', 'action.decline': 'Баш тартуу', 'action.decline_confirm': 'Жолдомодон баш тартуу',
    'action.contact_attempt': 'Байланышууга аракет кылдым', 'action.contact_made': 'Кардар менен байланыштым',
    'action.hold': 'Убактылуу токтотуу', 'action.resume': 'Улантуу', 'action.complete': 'Натыйжа менен жабуу',
    'action.complete_confirm': 'Жолдомону жабуу', 'action.fail': 'Натыйжасыз жабуу',
    'action.fail_confirm': 'Натыйжасыз жабуу', 'action.reassign': 'Башкага өткөрүү',
    'action.pending': 'Жөнөтүлүүдө…', 'action.done': 'Сакталды.', 'action.retry': 'Кайталоо',
    'actions.title': 'Аракеттер',
    'decline.reason': 'Себеби', 'decline.no_capacity': 'Азыр дагы кардар ала албайм',
    'decline.outside_area': 'Менин аймагым эмес', 'decline.language': 'Кардардын тилин билбейм',
    'decline.conflict_of_interest': 'Кызыкчылыктардын кагылышуусу', 'decline.other': 'Башка себеп',
    'complete.outcome': 'Натыйжасы', 'outcome.linked_to_services': 'Кызматтарга багытталды',
    'outcome.engaged': 'Тартылды, кызмат алып жатат', 'outcome.declined_services': 'Кызматтардан баш тартты',
    'outcome.other': 'Башка',
    'fail.reason': 'Себеби', 'fail.lost_contact': 'Байланыш үзүлдү', 'fail.client_declined': 'Кардар баш тартты',
    'fail.detained': 'Кардар кармалды', 'fail.other': 'Башка',
    'detail.label': 'Комментарий (милдеттүү эмес; аны сиз жана супервизорлоруңуз гана көрөт)',
    'contact.title': 'Байланыш', 'contact.call': 'Чалуу', 'contact.note': 'Пробациянын эскертмеси',
    'error.network': 'Байланыш жок. Эч нерсе жоголгон жок — кайра аракет кылыңыз.',
    'error.generic': 'Бир нерсе туура эмес болду. Кайра аракет кылыңыз.',
    'error.invalid_transition': 'Бул жолдомо ушул убакта өзгөрдү. Баракты жаңылаңыз.',
    'error.not_found': 'Бул жолдомо сизге тиешелүү эмес (же мындан ары тиешелүү эмес).',
    'error.load': 'Баракты жүктөө мүмкүн болгон жок.',
    'other.title': 'Бул эсеп үчүн бул жерде эч нерсе жок',
    'other.body': 'Бул барактар аутрич-кызматкерлер жана супервизорлор үчүн. Пробация бөлүмдөрү жана администраторлор API аркылуу иштешет.',
    'overview.title': 'Мөөнөтү өткөн жана аткаруучусу жоктор', 'overview.overdue': 'Мөөнөтү өткөндөр',
    'overview.unassigned': 'Аткаруучусу жоктор',
    'list.empty': 'Жок.', 'worker.unknown': 'башка уюм',
    'col.need': 'Кызмат', 'col.worker': 'Кызматкер', 'col.created': 'Түзүлдү', 'col.action': 'Аракет',
    'col.kind': 'Кызмат', 'col.regions': 'Аймактар', 'col.load': 'Иште / эң көп', 'col.sign_in': 'Кирүү коду',
    'col.offers': 'Сунуштар', 'col.assignments': 'Жолдомолор',
    'reassign.worker': 'Жаңы аткаруучу', 'reassign.reason': 'Себеби (милдеттүү)', 'reassign.confirm': 'Өткөрүү',
    'reassign.reason_required': 'Себебин жазыңыз.', 'reassign.no_worker': 'Бул кызмат боюнча бош кызматкер жок.',
    'reassign.done': 'Өткөрүлдү.', 'reassign.failed': 'Өткөрүү мүмкүн болгон жок.',
    'report.title': 'Мөөнөттөр боюнча отчёт', 'report.filters': 'Отчёттун чыпкалары', 'report.from': 'Башталышы',
    'report.to': 'Аягы (кошо алганда)', 'report.group_by': 'Топтоо белгиси', 'report.apply': 'Көрсөтүү',
    'report.csv': 'CSV жүктөп алуу', 'report.no_data': 'Бул мезгил үчүн маалымат жок.',
    'report.period': '{from} – {to}, убакыт: {tz}', 'report.table': 'Мөөнөттөр, белгиси: {by}',
    'report.table_title': 'Көрсөткүчтөр',
    'group.organisation': 'уюм', 'group.region': 'аймак', 'group.office': 'пробация бөлүмү',
    'group.worker': 'кызматкер', 'group.need': 'кызмат', 'group.none': '(жок)',
    'sec.accept': 'Кабыл алуу', 'sec.first_contact': 'Биринчи байланыш',
    'metric.met': 'аткарылды', 'metric.on_time': 'өз убагында', 'metric.missed': 'мөөнөтү өттү',
    'metric.on_time_rate': 'өз убагында аткарылганы', 'metric.median_seconds': 'медиана',
    'metric.p90_seconds': '90-процентиль',
    'chart.accept': 'Жолдомону кабыл алганга чейинки убакыт, белгиси: {by}',
    'chart.first_contact': 'Кабыл алгандан биринчи байланышка чейинки убакыт, белгиси: {by}',
    'chart.weeks': 'Өз убагында аткарылганы, апта сайын', 'chart.side': '(оңдо: медиана / 90-процентиль)',
    'bucket.lt': '< {d}', 'bucket.ge': '{d} же андан көп',
    'workers.title': 'Кызматкерлер', 'workers.issue': 'Кирүү кодун берүү',
    'workers.help': 'Код менен кызматкер телефондон кирет. Кодду айтып бериңиз же SMS менен жөнөтүңүз; ал бир жолу, 15 мүнөт иштейт.',
    'workers.valid_until': '{t} чейин жарактуу', 'workers.active': 'Иштейт', 'workers.inactive': 'Өчүрүлгөн',
    'workers.on_leave': 'Өргүүдө',
    'unit.d': '{n} күн', 'unit.h': '{n} саат', 'unit.min': '{n} мүн.', 'unit.s': '{n} сек.'
  };

  const REGIONS = {
    en: { 'bishkek': 'Bishkek', 'osh-city': 'Osh city', 'chui': 'Chüy', 'osh': 'Osh region',
      'jalal-abad': 'Jalal-Abad', 'batken': 'Batken', 'talas': 'Talas', 'naryn': 'Naryn', 'issyk-kul': 'Issyk-Kul' },
    ru: { 'bishkek': 'Бишкек', 'osh-city': 'г. Ош', 'chui': 'Чуйская обл.', 'osh': 'Ошская обл.',
      'jalal-abad': 'Джалал-Абадская обл.', 'batken': 'Баткенская обл.', 'talas': 'Таласская обл.',
      'naryn': 'Нарынская обл.', 'issyk-kul': 'Иссык-Кульская обл.' },
    ky: { 'bishkek': 'Бишкек', 'osh-city': 'Ош шаары', 'chui': 'Чүй облусу', 'osh': 'Ош облусу',
      'jalal-abad': 'Жалал-Абад облусу', 'batken': 'Баткен облусу', 'talas': 'Талас облусу',
      'naryn': 'Нарын облусу', 'issyk-kul': 'Ысык-Көл облусу' }
  };
  const LANGS = {
    en: { ky: 'Kyrgyz', ru: 'Russian', uz: 'Uzbek', en: 'English', tg: 'Tajik', kk: 'Kazakh' },
    ru: { ky: 'кыргызский', ru: 'русский', uz: 'узбекский', en: 'английский', tg: 'таджикский', kk: 'казахский' },
    ky: { ky: 'кыргызча', ru: 'орусча', uz: 'өзбекче', en: 'англисче', tg: 'тажикче', kk: 'казакча' }
  };
  const LOCALE = { en: 'en-GB', ru: 'ru-RU', ky: 'ky-KG' };
  const STORE = 'refd.lang';
  let cur = 'ru';
  const listeners = [];

  /* The browser's languages first; Russian when none of ours is among them
   * (the language every programme in the country shares). */
  function pick() {
    try {
      const saved = localStorage.getItem(STORE);
      if (saved && C[saved]) return saved;
    } catch (e) { /* storage may be off */ }
    for (const l of navigator.languages || [navigator.language || '']) {
      const base = String(l).toLowerCase().split('-')[0];
      if (C[base]) return base;
    }
    return 'ru';
  }

  /* Asia/Bishkek, unless the browser names a zone of its own (a bare UTC is
   * what a device without a configured zone reports, so it does not count). */
  function timeZone() {
    let z = '';
    try { z = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { z = ''; }
    return z && !/^(Etc\/)?(UTC|GMT|Universal|Zulu)$/i.test(z) ? z : 'Asia/Bishkek';
  }

  function t(key, vars) {
    let s = (C[cur] && C[cur][key]) || C.en[key] || key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  }

  /* Kyrgyz: browsers' locale data for ky is often partial (months as "M01",
   * "66.7%"), so its formats are written out here as CLDR gives them:
   * "2026-ж., 5-янв. 11:30", decimal comma, thin spaces between thousands. */
  const KY_MONTHS = ['янв.', 'фев.', 'мар.', 'апр.', 'май', 'июн.', 'июл.', 'авг.', 'сен.', 'окт.', 'ноя.', 'дек.'];
  function parts(v) {
    return Object.fromEntries(new Intl.DateTimeFormat('en-GB', { timeZone: timeZone(), hourCycle: 'h23',
      year: 'numeric', month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit' })
      .formatToParts(new Date(v)).map(x => [x.type, x.value]));
  }
  const ky = {
    day(v) { const p = parts(v); return `${Number(p.day)}-${KY_MONTHS[Number(p.month) - 1]}`; },
    date(v) { const p = parts(v); return `${p.year}-ж., ${ky.day(v)}`; },
    time(v) { const p = parts(v); return `${p.hour}:${p.minute}`; },
    number(v, frac) {
      return new Intl.NumberFormat('ru-RU', { maximumFractionDigits: frac == null ? 3 : frac }).format(v);
    }
  };

  const fmt = {
    dateTime(v) {
      if (cur === 'ky') return `${ky.date(v)} ${ky.time(v)}`;
      return new Intl.DateTimeFormat(LOCALE[cur], { timeZone: timeZone(), dateStyle: 'medium', timeStyle: 'short' })
        .format(new Date(v));
    },
    time(v) {
      if (cur === 'ky') return ky.time(v);
      return new Intl.DateTimeFormat(LOCALE[cur], { timeZone: timeZone(), hour: '2-digit', minute: '2-digit' })
        .format(new Date(v));
    },
    day(v) {
      if (cur === 'ky') return ky.day(v);
      return new Intl.DateTimeFormat(LOCALE[cur], { timeZone: timeZone(), day: 'numeric', month: 'short' })
        .format(new Date(v));
    },
    number(v) { return cur === 'ky' ? ky.number(v) : new Intl.NumberFormat(LOCALE[cur]).format(v); },
    percent(v) {
      if (cur === 'ky') return ky.number(v * 100, 1) + '%';
      return new Intl.NumberFormat(LOCALE[cur], { style: 'percent', maximumFractionDigits: 1 }).format(v);
    },
    /* Two largest units: 1 h 30 min, 3 d 2 h, 45 s. */
    duration(secs) {
      if (secs == null || isNaN(secs)) return '—';
      let s = Math.round(Number(secs));
      const parts = [];
      const units = [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]];
      for (const [u, n] of units) {
        if (s >= n || (u === 's' && !parts.length)) {
          const q = Math.floor(s / n);
          s -= q * n;
          parts.push(t('unit.' + u, { n: fmt.number(q) }));
        }
        if (parts.length === 2) break;
        if (parts.length === 1 && s === 0) break;
      }
      return parts.join(' ');
    }
  };

  function set(l) {
    if (!C[l]) return;
    cur = l;
    try { localStorage.setItem(STORE, l); } catch (e) { /* not remembered */ }
    document.documentElement.lang = l;
    for (const f of listeners) f(l);
  }

  R.i18n = {
    init() { set(pick()); },
    lang: () => cur, set, t, fmt, timeZone,
    onChange(f) { listeners.push(f); f(cur); },
    region: r => (REGIONS[cur] && REGIONS[cur][r]) || r,
    language: l => (LANGS[cur] && LANGS[cur][l]) || l,
    catalogues: C
  };
})(window.RFD = window.RFD || {});
