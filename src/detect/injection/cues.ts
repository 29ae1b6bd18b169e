// Signs that a text speaks to a model about its own setup: its instructions,
// rules or prompt, what it is (an AI, an assistant, a persona), secrets it
// holds, how it must answer, or tools it should call. An attack has to say at
// least one of these things; "What is the capital of France?" says none.
//
// Used to decide whether the learned classifier may judge a short text
// (score.ts): on a few words a bag of n-grams only says which topics its
// training attacks were about (PurpleLlama's attacks open with trivia and
// haiku requests), so a short text without any of these signs is left to the
// rules. Words in the languages of the training data; matched on the folded
// text (NFKC, lower case).

// English, on word boundaries.
const ENGLISH = new RegExp(
  '\\b(?:' +
    [
      // the model's setup and identity
      'instructions?', 'prompts?', 'rules?', 'guidelines?', 'polic(?:y|ies)', 'restrictions?', 'restricted', 'filter(?:s|ed|ing)?', 'censor\\w*',
      'guardrails?', 'ethic\\w*', 'moral\\w*', 'openai', 'chat ?gpt', 'gpt-?\\d?', 'language models?', 'llms?', 'ai', 'a\\.i\\.', 'assistant', 'chatbot',
      'developer mode', 'jailbr\\w*', 'dan', 'unfiltered', 'uncensored', 'amoral', 'unrestricted', 'limitations?', 'constraints?', 'programming',
      'training data', 'system (?:prompt|message|instructions?)', 'admin\\w*', 'sudo', 'root access', 'mode', 'developer', 'configuration', 'initial(?:ization)?',
      // overriding them
      'ignore', 'disregard', 'forget', 'override', 'bypass', 'circumvent', 'stop following', 'no longer', 'instead of', 'new task', 'from now on', 'henceforth',
      // secrets and other people's data
      'passwords?', 'passcode', 'secrets?', 'api[ _-]?keys?', 'credentials?', 'tokens?', 'confidential', 'private key', 'reveal', 'repeat', 'verbatim', 'above',
      "the user'?s?", "users'", 'database', 'birth ?(?:date|day|year)', 'home address', 'bank (?:balance|account)',
      // how to answer
      '(?:start|begin) (?:your |each |every )?(?:response|reply|answer|output|message)s?', '(?:only|just) (?:respond|reply|say|print|output|answer|write)',
      'stay in character', 'do not (?:refuse|apologi[sz]e|warn)', 'never (?:refuse|say no|apologi[sz]e|decline)', 'respond (?:as|with)',
      // roles
      'you are (?:now|no longer)', 'act as', 'pretend', 'role-?play', 'simulate', 'imagine (?:you|that you)', 'you will (?:now )?(?:be|act)', 'personas?', 'in character',
      // tools and sending data out
      'tools?', 'function call',
    ].join('|') +
    ')\\b',
  'i',
);

// Sending data to an address, or a markdown image pointing out.
const OUTBOUND = /\b(?:send|forward|email|upload|post|exfiltrate|leak)\b.{0,60}\b(?:to|at)\b.{0,40}(?:@|https?:\/\/|\.com\b)|!\[[^\]]*\]\(https?:\/\/|<!--|<img\b|\bbase64\b/i;

// The same signs in the other languages of the training data (password, instructions, ignore/forget, AI, secret, system, user), as substrings.
const OTHER_LANGUAGES = new RegExp(
  [
    'contrase', 'senha', 'mot de passe', 'passwort', 'kennwort', "parola d'ordine", 'пароль', 'パスワード', '密码', '密碼', '비밀번호', 'mật khẩu', 'kata sandi',
    'รหัสผ่าน', 'şifre', 'parola', 'كلمة المرور', 'كلمة السر', 'পাসওয়ার্ড', 'पासवर्ड',
    'instruc', 'anweisung', 'istruzion', 'инструкц', '指示', '指令', '지시', 'hướng dẫn', 'instruksi', 'คำสั่ง', 'talimat', 'تعليمات', 'নির্দেশ', 'निर्देश', 'tagubilin',
    'ignor', 'olvid', 'esque', 'oubli', 'vergiss', 'dimentic', 'забуд', 'игнор', '無視', '忽略', '무시', 'bỏ qua', 'abaikan', 'lupakan', 'เพิกเฉย', 'ละเว้น', 'yok say',
    'unut', 'تجاهل', 'উপেক্ষা', 'अनदेखा', 'kalimutan', 'huwag pansinin',
    '\\bia\\b', '\\bki\\b', '(?<![а-яё])ии(?![а-яё])', '人工知能', '人工智能', '인공지능', 'एआई', 'এআই', 'الذكاء الاصطناعي',
    'secreto', 'segredo', 'geheim', 'segreto', 'секрет', '秘密', '비밀', 'bí mật', 'rahasia', 'ความลับ', 'gizli', 'سر', 'গোপন', 'गुप्त',
    'sistema', 'système', 'системн', 'システム', '系统', '시스템', 'hệ thống', 'sistem', 'ระบบ', 'نظام', 'সিস্টেম', 'सिस्टम',
    'usuario', 'utilisateur', 'benutzer', 'nutzer', 'utente', 'usuário', 'пользовател', 'ユーザー', '用户', '用戶', '사용자', 'người dùng', 'pengguna', 'ผู้ใช้',
    'kullanıcı', 'المستخدم', 'ব্যবহারকারী', 'उपयोगकर्ता', 'gumagamit',
  ].join('|'),
  'i',
);

/** Whether the text shows any sign of speaking to a model about its setup, secrets, answers or tools. */
export function speaksToModel(text: string): boolean {
  return ENGLISH.test(text) || OUTBOUND.test(text) || OTHER_LANGUAGES.test(text);
}
