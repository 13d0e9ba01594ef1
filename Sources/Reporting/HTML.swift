import HarrowCore
import Foundation

/// HTML text building. Every string that may come from a user goes through `escape`.
enum HTML {
    static func escape(_ s: String) -> String { Markup.escape(s) }

    /// A whole page: CSS inline, links relative, and only the small sorting script.
    static func page(title: String, nav: [(label: String, href: String)], body: String) -> String {
        let links = nav.map { "<a href=\"\(escape($0.href))\">\(escape($0.label))</a>" }.joined(separator: " · ")
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title))</title>
            <style>\(css)</style></head>
            <body><nav>\(links)</nav>
            <h1>\(escape(title))</h1>
            \(body)
            <script>\(sortScript)\(filterScript)</script>
            </body></html>
            """
    }

    /// A table whose columns sort on a header click; a cell's `data-v` (a number) sorts it when present.
    static func table(
        header: [String], rows: [[Cell]], caption: String? = nil, id: String? = nil, rowClass: (Int) -> String? = { _ in nil }
    ) -> String {
        var s = "<div class=\"wide\"><table class=\"sortable\"\(id.map { " id=\"\(escape($0))\"" } ?? "")>"
        if let caption { s += "<caption>\(escape(caption))</caption>" }
        s += "<thead><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr></thead><tbody>\n"
        for (i, row) in rows.enumerated() {
            s +=
                (rowClass(i).map { "<tr class=\"\($0)\">" } ?? "<tr>")
                + row.map { cell in
                    let sortKey = cell.sortValue.map { " data-v=\"\($0.isFinite ? String($0) : "")\"" } ?? ""
                    let cls = cell.cls.map { " class=\"\($0)\"" } ?? ""
                    return "<td\(sortKey)\(cls)>\(cell.html)</td>"
                }.joined() + "</tr>\n"
        }
        return s + "</tbody></table></div>"
    }

    struct Cell {
        /// Already-escaped HTML.
        var html: String
        var sortValue: Double?
        var cls: String?

        static func text(_ s: String, cls: String? = nil) -> Cell { Cell(html: escape(s), sortValue: nil, cls: cls) }
        static func number(_ v: Double?, digits: Int = 4, cls: String? = nil) -> Cell {
            guard let v else { return Cell(html: "–", sortValue: .nan, cls: "missing") }
            return Cell(html: Format.number(v, digits: digits), sortValue: v, cls: cls ?? "num")
        }
    }

    static let css = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:12px 20px;color:#1d232a}
        nav{font-size:13px;margin-bottom:8px}a{color:#1f5fa8;text-decoration:none}a:hover{text-decoration:underline}
        h1{font-size:22px;margin:4px 0 12px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #dde2e8;padding-bottom:3px}
        section p.note{color:#5b6570;font-size:13px;margin:4px 0}
        table{border-collapse:collapse;font-size:12.5px;margin:6px 0}th,td{padding:3px 6px;border-bottom:1px solid #e6e9ee;text-align:left;vertical-align:top}
        th{background:#f3f5f8;white-space:nowrap}div.wide{overflow-x:auto;max-width:100%}table.sortable th{cursor:pointer;user-select:none}table.sortable th:after{content:" ⇅";color:#9aa3ad}
        th.asc:after{content:" ▲"!important;color:#333!important}th.desc:after{content:" ▼"!important;color:#333!important}
        td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td small{color:#5b6570}td.missing{color:#9aa3ad;text-align:center}
        .good_fit{color:#1a7f37}.overfitting,.diverged,.unstable{color:#c62828}.under_trained,.stalled_start,.insufficient_data{color:#b26a00}
        .succeeded{color:#1a7f37}.failed,.timed_out{color:#c62828}.interrupted,.running,.queued{color:#b26a00}
        .pass{color:#1a7f37}.fail{color:#c62828;font-weight:600}.dirty{color:#c62828}
        figure{margin:8px 0}.multiples{display:grid;grid-template-columns:repeat(auto-fill,minmax(310px,1fr));gap:4px 12px}.multiples figure{margin:0}.multiples.two{grid-template-columns:repeat(auto-fill,minmax(520px,1fr))}figure img{max-width:100%;height:auto;border:1px solid #eef0f3}
        .grid{display:flex;flex-wrap:wrap;gap:10px}
        section.answer{background:#f6f8fa;border:1px solid #dde2e8;border-radius:6px;padding:8px 14px;margin:4px 0 10px}section.answer p{margin:4px 0}
        p.best{font-size:16px}p.answer{font-size:15px;margin:6px 0}p.verdicts a{margin-right:4px}p.verdicts a.clear{color:#5b6570}
        table tr.more{display:none}table.all tr.more,table.filtered tr.more{display:table-row}table tr.hide{display:none!important}
        input.filter{font:inherit;padding:3px 6px;width:320px;max-width:60%}button.all{font:inherit;margin-left:8px}span.count{color:#5b6570;margin-left:8px}details summary{cursor:pointer}code,pre{font:12px ui-monospace,monospace}
        pre{background:#f6f8fa;padding:8px;overflow-x:auto;max-height:320px}dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:6px 0}dt{color:#5b6570}dd{margin:0}dl.evidence{grid-template-columns:repeat(4,max-content auto);font-size:13px}
        article.reply{border-left:3px solid #dde2e8;padding-left:10px;margin:10px 0}article.reply pre{white-space:pre-wrap;max-height:200px;margin:0}
        """

    /// The run table's filter (every word must appear in a row), its "show all" toggle, and the verdict counts
    /// that fill the filter. Rows past the first `data-top` carry `more` and show only when asked or matched.
    static let filterScript = """
        document.querySelectorAll('input.filter').forEach(function(q){var t=document.getElementById(q.getAttribute('data-table'));if(!t)return;
        var b=document.querySelector('button.all[data-table="'+t.id+'"]');
        function apply(){var w=q.value.toLowerCase().split(/\\s+/).filter(Boolean),n=0;t.classList.toggle('filtered',w.length>0);
        Array.prototype.forEach.call(t.tBodies[0].rows,function(r){var s=r.textContent.toLowerCase(),ok=w.every(function(x){return s.indexOf(x)>=0});
        r.classList.toggle('hide',!ok);if(ok)n++;});var c=document.querySelector('span.count[data-table="'+t.id+'"]');if(c)c.textContent=w.length?n+' match':'';}
        q.addEventListener('input',apply);
        if(b)b.addEventListener('click',function(){var all=t.classList.toggle('all');b.textContent=all?b.getAttribute('data-less'):b.getAttribute('data-more');});
        document.querySelectorAll('a[data-q]').forEach(function(a){a.addEventListener('click',function(){q.value=a.getAttribute('data-q');apply();});});});
        """

    /// Sorts a table's body rows by the clicked column: numbers by `data-v`, text otherwise; missing last.
    static let sortScript = """
        document.querySelectorAll('table.sortable').forEach(function(t){t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
        var asc=!th.classList.contains('asc');t.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc')});th.classList.add(asc?'asc':'desc');
        var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);function key(r){var c=r.cells[i];if(!c)return null;var v=c.getAttribute('data-v');
        if(v!==null)return v===''?null:parseFloat(v);return c.textContent.trim();}
        rows.sort(function(x,y){var a=key(x),c=key(y);if(a===null)return c===null?0:1;if(c===null)return -1;var r=(typeof a==='number'&&typeof c==='number')?a-c:String(a).localeCompare(String(c),undefined,{numeric:true});return asc?r:-r;});
        rows.forEach(function(r){b.appendChild(r)});});});});
        """
}

/// Number formatting shared by tables and plot labels.
enum Format {
    static func number(_ v: Double, digits: Int = 4) -> String {
        if v == v.rounded(), abs(v) < 1e9 { return String(Int(v)) }
        return String(format: "%.\(digits)g", v)
    }

    /// "+0.193" / "−0.066": a difference, signed, to three decimals.
    static func signed(_ v: Double) -> String { (v < 0 ? "−" : "+") + String(format: "%.3f", abs(v)) }

    static func duration(_ s: Double) -> String {
        if s < 60 { return String(format: "%.1f s", s) }
        if s < 3600 { return String(format: "%dm %02ds", Int(s) / 60, Int(s) % 60) }
        return String(format: "%dh %02dm", Int(s) / 3600, Int(s) % 3600 / 60)
    }
}
