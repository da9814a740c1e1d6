using System.Globalization;
using static Amalgam.Tokenizers.ChatTemplates.TemplateValues;

namespace Amalgam.Tokenizers.ChatTemplates;

/// <summary>
/// Operators, attribute and item access, slicing, filters, tests and the string/dict methods of the Jinja subset,
/// with Python's semantics. A filter, test or method outside the subset is refused by name.
/// </summary>
internal static class TemplateBuiltins
{
    public static object? GetAttribute(object? target, string name)
    {
        switch (target)
        {
            case Undefined u: throw new TemplateException($"{u.Description} (attribute '{name}')");
            case Namespace ns: return ns.Values.TryGetValue(name, out var v) ? v : new Undefined($"'Namespace' has no attribute '{name}'");
            case OrderedDictionary<string, object?> d:
                // Jinja's getattr looks for the attribute first (dict methods), then the key.
                if (DictMethod(d, name) is { } m) return m;
                return d.TryGetValue(name, out var dv) ? dv : new Undefined($"'dict object' has no attribute '{name}'");
            case string s when StringMethod(s, name) is { } sm: return sm;
            default: return new Undefined($"'{TypeName(target)} object' has no attribute '{name}'");
        }
    }

    public static object? GetItem(object? target, object? index)
    {
        switch (target)
        {
            case Undefined u: throw new TemplateException(u.Description);
            case OrderedDictionary<string, object?> d when index is string key:
                return d.TryGetValue(key, out var v) ? v : (object?)DictMethod(d, key) ?? new Undefined($"'dict object' has no attribute '{key}'");
            case List<object?> l when index is long i:
                var at = i < 0 ? l.Count + i : i;
                return at >= 0 && at < l.Count ? l[(int)at] : new Undefined($"list object has no element {i}");
            case string s when index is long i:
                var runes = s.EnumerateRunes().ToList();
                var r = i < 0 ? runes.Count + i : i;
                return r >= 0 && r < runes.Count ? runes[(int)r].ToString() : new Undefined($"str object has no element {i}");
            case Namespace ns when index is string key: return GetAttribute(ns, key);
            case string s when index is string name: return GetAttribute(s, name);
            default: return new Undefined($"'{TypeName(target)} object' has no element {Repr(index)}");
        }
    }

    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        long st = step is null ? 1 : step as long? ?? throw new TemplateException("slice indices must be integers");
        if (st == 0) throw new TemplateException("slice step cannot be zero");
        List<object?> items = target switch
        {
            List<object?> l => l,
            string s => s.EnumerateRunes().Select(r => (object?)r.ToString()).ToList(),
            Undefined u => throw new TemplateException(u.Description),
            _ => throw new TemplateException($"'{TypeName(target)}' object is not subscriptable"),
        };
        int n = items.Count;
        long Clamp(object? v, long defaultValue, bool forStart)
        {
            if (v is null) return defaultValue;
            if (v is not long x) throw new TemplateException("slice indices must be integers");
            if (x < 0) x += n;
            return st > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }
        long from = Clamp(start, st > 0 ? 0 : n - 1, true), to = Clamp(stop, st > 0 ? n : -1, false);
        var result = new List<object?>();
        for (long i = from; st > 0 ? i < to : i > to; i += st) result.Add(items[(int)i]);
        return target is string ? string.Concat(result.Cast<string>()) : result;
    }

    public static object? Binary(string op, object? a, object? b)
    {
        if (a is Undefined ua && op is not ("==" or "!=")) throw new TemplateException(ua.Description);
        if (b is Undefined ub && op is not ("==" or "!=" or "in")) throw new TemplateException(ub.Description);
        switch (op)
        {
            case "==": return PyEquals(a, b);
            case "!=": return !PyEquals(a, b);
            case "in":
                return b switch
                {
                    string s when a is string sub => s.Contains(sub, StringComparison.Ordinal),
                    List<object?> l => l.Any(x => PyEquals(x, a)),
                    OrderedDictionary<string, object?> d => a is string k && d.ContainsKey(k),
                    Undefined u => throw new TemplateException(u.Description),
                    _ => throw new TemplateException($"argument of type '{TypeName(b)}' is not iterable"),
                };
            case "~": return Str(a) + Str(b);
            case "+":
                if (a is string sa && b is string sb) return sa + sb;
                if (a is List<object?> la && b is List<object?> lb) return la.Concat(lb).ToList();
                break;
            case "*" when a is string rs && b is long times: return string.Concat(Enumerable.Repeat(rs, (int)Math.Max(0, times)));
        }
        if (Number(a) is { } x && Number(b) is { } y)
        {
            bool ints = (a is long or bool) && (b is long or bool);
            long ia = ToLong(a), ib = ToLong(b);
            switch (op)
            {
                case "+": return ints ? (object)(ia + ib) : x + y;
                case "-": return ints ? (object)(ia - ib) : x - y;
                case "*": return ints ? (object)(ia * ib) : x * y;
                case "/": if (y == 0) throw new TemplateException("division by zero"); return x / y;
                case "//":
                    if (y == 0) throw new TemplateException("integer division or modulo by zero");
                    return ints ? (object)FloorDiv(ia, ib) : Math.Floor(x / y);
                case "%":
                    if (y == 0) throw new TemplateException("integer division or modulo by zero");
                    return ints ? (object)(ia - ib * FloorDiv(ia, ib)) : x - y * Math.Floor(x / y);
                case "**": return ints && ib >= 0 ? (object)(long)Math.Pow(ia, ib) : Math.Pow(x, y);
                case "<": return x < y;
                case ">": return x > y;
                case "<=": return x <= y;
                case ">=": return x >= y;
            }
        }
        if (a is string s1 && b is string s2 && op is "<" or ">" or "<=" or ">=")
        {
            int c = string.CompareOrdinal(s1, s2);
            return op switch { "<" => c < 0, ">" => c > 0, "<=" => c <= 0, _ => c >= 0 };
        }
        throw new TemplateException($"unsupported operand type(s) for {op}: '{TypeName(a)}' and '{TypeName(b)}'");
    }

    private static long FloorDiv(long a, long b)
    {
        long q = a / b;
        return a % b != 0 && (a < 0) != (b < 0) ? q - 1 : q;
    }

    private static double? Number(object? v) => v switch { long l => l, double d => d, bool b => b ? 1 : 0, _ => null };
    private static long ToLong(object? v) => v switch { long l => l, bool b => b ? 1 : 0, double d => (long)d, _ => 0 };

    public static bool PyEquals(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (Number(a) is { } x && Number(b) is { } y) return x == y;
        return (a, b) switch
        {
            (null, null) => true,
            (string s, string t) => s == t,
            (List<object?> l, List<object?> m) => l.Count == m.Count && l.Zip(m).All(p => PyEquals(p.First, p.Second)),
            (OrderedDictionary<string, object?> d, OrderedDictionary<string, object?> e) =>
                d.Count == e.Count && d.All(kv => e.TryGetValue(kv.Key, out var v) && PyEquals(kv.Value, v)),
            _ => ReferenceEquals(a, b),
        };
    }

    public static object? Filter(string name, object? value, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? Arg(int i, string key, object? fallback = null) => i < args.Count ? args[i] : kwargs.TryGetValue(key, out var v) ? v : fallback;
        switch (name)
        {
            case "trim": return Strip(Str(value), Arg(0, "chars") as string, true, true);
            case "tojson":
                var indent = Arg(0, "indent");
                return ToJson(value, indent as long? is long n ? (int)n : null, Truthy(Arg(1, "sort_keys")));
            case "length" or "count":
                return value switch
                {
                    string s => (long)s.EnumerateRunes().Count(),
                    List<object?> l => (long)l.Count,
                    OrderedDictionary<string, object?> d => (long)d.Count,
                    Undefined => 0L,
                    _ => throw new TemplateException($"object of type '{TypeName(value)}' has no len()"),
                };
            case "string": return Str(value);
            case "list": return TemplateRenderer.Iterate(value, "list filter").ToList();
            case "first": return TemplateRenderer.Iterate(value, "first filter").FirstOrDefault(new Undefined("No first item, sequence was empty."));
            case "last": var all = TemplateRenderer.Iterate(value, "last filter").ToList(); return all.Count > 0 ? all[^1] : new Undefined("No last item, sequence was empty.");
            case "join": return string.Join(Arg(0, "d", "") as string ?? "", TemplateRenderer.Iterate(value, "join filter").Select(Str));
            case "upper": return Str(value).ToUpperInvariant();
            case "lower": return Str(value).ToLowerInvariant();
            case "capitalize": var c = Str(value); return c.Length == 0 ? c : char.ToUpperInvariant(c[0]) + c[1..].ToLowerInvariant();
            case "replace": return Str(value).Replace(Str(Arg(0, "old")), Str(Arg(1, "new")), StringComparison.Ordinal);
            case "default" or "d":
                bool boolean = Truthy(Arg(1, "boolean", false));
                return value is Undefined || (boolean && !Truthy(value)) ? Arg(0, "default_value", "") : value;
            case "items":
                if (value is Undefined) return new List<object?>();
                if (value is not OrderedDictionary<string, object?> dict) throw new TemplateException($"items filter: '{TypeName(value)}' is not a mapping");
                return dict.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList();
            case "reverse":
                return value is string rs ? string.Concat(rs.EnumerateRunes().Reverse().Select(r => r.ToString()))
                    : TemplateRenderer.Iterate(value, "reverse filter").Reverse().ToList();
            case "int": return value switch { long l => (object)l, double d => (long)d, string s when long.TryParse(s.Trim(), out var p) => p, bool b => b ? 1L : 0L, _ => Arg(0, "default", 0L) };
            case "float": return value switch { long l => (object)(double)l, double d => d, string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var p) => p, _ => Arg(0, "default", 0.0) };
            case "abs": return value switch { long l => (object)Math.Abs(l), double d => Math.Abs(d), _ => throw new TemplateException("abs filter needs a number") };
            case "safe": return value;
            case "selectattr" or "rejectattr":
                bool select = name == "selectattr";
                var attr = Str(Arg(0, "attribute"));
                var testName = args.Count > 1 ? Str(args[1]) : null;
                var testArgs = args.Skip(2).ToList();
                return TemplateRenderer.Iterate(value, name).Where(item =>
                {
                    var v = GetAttribute(item, attr);
                    bool ok = testName is null ? Truthy(v) : Test(testName, v, testArgs);
                    return ok == select;
                }).ToList();
            case "map":
                if (kwargs.TryGetValue("attribute", out var mapAttr))
                    return TemplateRenderer.Iterate(value, "map").Select(item => GetAttribute(item, Str(mapAttr)) is Undefined && kwargs.TryGetValue("default", out var dflt) ? dflt : GetAttribute(item, Str(mapAttr))).ToList();
                if (args.Count > 0 && args[0] is string filterName)
                    return TemplateRenderer.Iterate(value, "map").Select(item => Filter(filterName, item, args.Skip(1).ToList(), [])).ToList();
                throw new TemplateException("map filter needs attribute= or a filter name");
            default: throw new TemplateException($"the filter '{name}' is not supported by Amalgam's chat-template renderer");
        }
    }

    public static bool Test(string name, object? value, List<object?> args)
    {
        switch (name)
        {
            case "defined": return value is not Undefined;
            case "undefined": return value is Undefined;
            case "none": return value is null;
            case "string": return value is string;
            case "number": return value is long or double;
            case "integer": return value is long;
            case "float": return value is double;
            case "boolean": return value is bool;
            case "true": return value is true;
            case "false": return value is false;
            case "mapping": return value is OrderedDictionary<string, object?> or Namespace;
            case "iterable" or "sequence": return value is string or List<object?> or OrderedDictionary<string, object?>;
            case "callable": return value is TemplateFunction;
            case "odd": return value is long o && o % 2 != 0;
            case "even": return value is long e && e % 2 == 0;
            case "divisibleby": return value is long d && args is [long by] && by != 0 && d % by == 0;
            case "eq" or "equalto" or "==": return args.Count == 1 && PyEquals(value, args[0]);
            case "ne" or "!=": return args.Count == 1 && !PyEquals(value, args[0]);
            case "in": return args.Count == 1 && Truthy(Binary("in", value, args[0]));
            case "lower": return value is string l && l == l.ToLowerInvariant();
            case "upper": return value is string u && u == u.ToUpperInvariant();
            case "sameas": return args.Count == 1 && (value is null && args[0] is null || value is bool b && args[0] is bool c && b == c || ReferenceEquals(value, args[0]));
            default: throw new TemplateException($"the test '{name}' is not supported by Amalgam's chat-template renderer");
        }
    }

    private static TemplateFunction? DictMethod(OrderedDictionary<string, object?> d, string name) => name switch
    {
        "items" => (_, _) => d.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList(),
        "keys" => (_, _) => d.Keys.Cast<object?>().ToList(),
        "values" => (_, _) => d.Values.ToList(),
        "get" => (a, _) => a.Count > 0 && a[0] is string k && d.TryGetValue(k, out var v) ? v : a.Count > 1 ? a[1] : null,
        _ => null,
    };

    private static TemplateFunction? StringMethod(string s, string name) => name switch
    {
        "strip" => (a, _) => Strip(s, a.Count > 0 ? a[0] as string : null, true, true),
        "lstrip" => (a, _) => Strip(s, a.Count > 0 ? a[0] as string : null, true, false),
        "rstrip" => (a, _) => Strip(s, a.Count > 0 ? a[0] as string : null, false, true),
        "startswith" => (a, _) => Affixes(a, "startswith").Any(p => s.StartsWith(p, StringComparison.Ordinal)),
        "endswith" => (a, _) => Affixes(a, "endswith").Any(p => s.EndsWith(p, StringComparison.Ordinal)),
        "split" => (a, k) => Split(s, a.Count > 0 ? a[0] as string : null, a.Count > 1 && a[1] is long m ? m : k.TryGetValue("maxsplit", out var mk) && mk is long mm ? mm : -1),
        "replace" => (a, _) => a is [string o, string n, ..] ? (a.Count > 2 && a[2] is long count ? ReplaceCount(s, o, n, count) : s.Replace(o, n, StringComparison.Ordinal)) : throw new TemplateException("replace() takes two strings"),
        "upper" => (_, _) => s.ToUpperInvariant(),
        "lower" => (_, _) => s.ToLowerInvariant(),
        "title" => (_, _) => CultureInfo.InvariantCulture.TextInfo.ToTitleCase(s.ToLowerInvariant()),
        "capitalize" => (_, _) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(),
        "join" => (a, _) => string.Join(s, TemplateRenderer.Iterate(a.Count > 0 ? a[0] : null, "join").Select(x => x as string ?? throw new TemplateException($"sequence item: expected str instance, {TypeName(x)} found"))),
        "find" => (a, _) => (long)s.IndexOf(a.Count > 0 ? Str(a[0]) : "", StringComparison.Ordinal),
        "isdigit" => (_, _) => s.Length > 0 && s.All(char.IsDigit),
        _ => null,
    };

    private static IEnumerable<string> Affixes(List<object?> a, string method) => a.Count > 0 ? a[0] switch
    {
        string p => [p],
        List<object?> l => l.Select(x => x as string ?? throw new TemplateException($"{method}: tuple items must be strings")),
        _ => throw new TemplateException($"{method} first arg must be str or a tuple of str, not {TypeName(a[0])}"),
    } : throw new TemplateException($"{method}() takes at least 1 argument (0 given)");

    private static string ReplaceCount(string s, string o, string n, long count)
    {
        if (count < 0) return s.Replace(o, n, StringComparison.Ordinal);
        var result = s;
        int at = 0;
        for (long i = 0; i < count; i++)
        {
            int idx = result.IndexOf(o, at, StringComparison.Ordinal);
            if (idx < 0) break;
            result = result[..idx] + n + result[(idx + o.Length)..];
            at = idx + n.Length;
        }
        return result;
    }

    /// <summary>Python's strip family: whitespace by default, else any of <paramref name="chars"/>.</summary>
    public static string Strip(string s, string? chars, bool left, bool right)
    {
        Func<char, bool> drop = chars is null ? IsPySpace : chars.Contains;
        int from = 0, to = s.Length;
        if (left) while (from < to && drop(s[from])) from++;
        if (right) while (to > from && drop(s[to - 1])) to--;
        return s[from..to];
    }

    private static List<object?> Split(string s, string? sep, long maxsplit)
    {
        var parts = new List<object?>();
        if (sep is null)
        {
            int i = 0;
            while (true)
            {
                while (i < s.Length && IsPySpace(s[i])) i++;
                if (i >= s.Length) break;
                if (maxsplit >= 0 && parts.Count == maxsplit) { parts.Add(Strip(s[i..], null, false, true)); break; }
                int j = i;
                while (j < s.Length && !IsPySpace(s[j])) j++;
                parts.Add(s[i..j]);
                i = j;
            }
            return parts;
        }
        if (sep.Length == 0) throw new TemplateException("empty separator");
        int at = 0;
        while (maxsplit < 0 || parts.Count < maxsplit)
        {
            int idx = s.IndexOf(sep, at, StringComparison.Ordinal);
            if (idx < 0) break;
            parts.Add(s[at..idx]);
            at = idx + sep.Length;
        }
        parts.Add(s[at..]);
        return parts;
    }
}
